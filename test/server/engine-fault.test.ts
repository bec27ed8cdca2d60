// Engine fault on the real engine (tiny model; the fault is injected in the model's forward pass):
// in-flight requests get an error (the envelope, or an error chunk then [DONE] when streaming),
// /health turns 503, new requests fail, and the lifecycle exits non-zero.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { installLifecycle } from '../../src/server/lifecycle.js';
import { openSse, startRealLive, until } from './helpers.js';
import { ModelFault, TINY_MODEL_ID } from './real-engine.js';

const post = (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('engine fault', () => {
  it('fails in-flight requests, turns /health 503 and exits non-zero', async () => {
    const fault = new ModelFault();
    const live = await startRealLive({ engine: { fault } });
    const exits: number[] = [];
    let remove = (): void => {};
    try {
      assert.equal((await fetch(`${live.url}/health`)).status, 200);
      // Both requests are long enough to be running when the fault is armed.
      const nonStream = post(`${live.url}/v1/completions`, { prompt: 'a', max_tokens: 200, ignore_eos: true });
      const stream = await openSse(`${live.url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 200,
        ignore_eos: true,
        stream: true,
      });
      await stream.firstEvent;
      await live.engine.admittedCount(2);
      fault.arm();

      const res = await nonStream;
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('x-should-retry'), 'false');
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'cuda_error');
      assert.equal(body.error.type, 'server_error');

      assert.equal(stream.status, 200);
      const events = await stream.done;
      assert.equal(events.at(-1), '[DONE]');
      const errChunk = JSON.parse(events.at(-2)!) as { error: { code: string; message: string } };
      assert.equal(errChunk.error.code, 'cuda_error');
      assert.match(errChunk.error.message, /simulated CUDA fault/);

      assert.equal(live.server.state, 'dead');
      const h = await fetch(`${live.url}/health`);
      assert.equal(h.status, 503);
      assert.equal(((await h.json()) as { error: { code: string } }).error.code, 'cuda_error');
      const again = await post(`${live.url}/v1/completions`, { prompt: 'a' });
      assert.equal(again.status, 500);
      // The lifecycle (installed late here so the probes above run before it closes the server)
      // exits non-zero for a dead engine.
      remove = installLifecycle(live.server, { drainTimeoutMs: 1000, fatalGraceMs: 100, exit: (c) => exits.push(c), signals: [] });
      await until(() => exits.length > 0, 'the lifecycle to exit');
      assert.deepEqual(exits, [1]);
    } finally {
      remove();
      await live.close().catch(() => undefined);
    }
  });
});

describe('errors mid-stream through the openai client', () => {
  it('the client throws an APIError carrying the error chunk', async () => {
    // One request: forward 1 is its prefill, 2..4 decode; the 5th forward fails.
    const live = await startRealLive({ engine: { fault: new ModelFault(5) } });
    try {
      const stream = await live.client.chat.completions.create({
        model: TINY_MODEL_ID,
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 50,
        stream: true,
        ignore_eos: true,
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      const seen: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
        })(),
        (e: unknown) => e instanceof OpenAI.APIError && /simulated CUDA fault/.test(e.message),
      );
      assert.ok(seen.length >= 1);
    } finally {
      await live.close();
    }
  });
});
