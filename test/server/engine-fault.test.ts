// Engine fault: in-flight requests get an error (the envelope, or an error chunk then [DONE] when
// streaming), /health turns 503, new requests fail, and the lifecycle exits non-zero.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { installLifecycle } from '../../src/server/lifecycle.js';
import { rawSse, startLive } from './helpers.js';

describe('engine fault', () => {
  it('fails in-flight requests, turns /health 503 and exits non-zero', async () => {
    const live = await startLive({ engine: { stepMs: 5, faultAfterTokens: 12 }, server: { fatalPollMs: 10 } });
    const exits: number[] = [];
    let remove = (): void => {};
    try {
      assert.equal((await fetch(`${live.url}/health`)).status, 200);
      const nonStream = fetch(`${live.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a', max_tokens: 100 }) });
      const stream = rawSse(`${live.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 100, stream: true });

      const res = await nonStream;
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('x-should-retry'), 'false');
      const body = (await res.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'cuda_error');
      assert.equal(body.error.type, 'server_error');

      const s = await stream;
      assert.equal(s.status, 200);
      assert.equal(s.events.at(-1), '[DONE]');
      const errChunk = JSON.parse(s.events.at(-2)!) as { error: { code: string; message: string } };
      assert.equal(errChunk.error.code, 'cuda_error');
      assert.match(errChunk.error.message, /simulated CUDA fault/);

      assert.equal(live.server.state, 'dead');
      const h = await fetch(`${live.url}/health`);
      assert.equal(h.status, 503);
      assert.equal(((await h.json()) as { error: { code: string } }).error.code, 'cuda_error');
      const again = await fetch(`${live.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a' }) });
      assert.equal(again.status, 500);
      // The lifecycle (installed late here so the probes above run before it closes the server)
      // exits non-zero for a dead engine.
      remove = installLifecycle(live.server, { drainTimeoutMs: 1000, fatalGraceMs: 100, exit: (c) => exits.push(c), signals: [] });
      for (let i = 0; i < 200 && exits.length === 0; i++) await sleep(10);
      assert.deepEqual(exits, [1]);
    } finally {
      remove();
      await live.close().catch(() => undefined);
    }
  });
});

describe('errors mid-stream through the openai client', () => {
  it('the client throws an APIError carrying the error chunk', async () => {
    const live = await startLive({ engine: { stepMs: 2, faultAfterTokens: 4 } });
    try {
      const stream = await live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], max_tokens: 50, stream: true });
      const seen: string[] = [];
      await assert.rejects((async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
      })(), (e: unknown) => e instanceof OpenAI.APIError && /simulated CUDA fault/.test(e.message));
      assert.ok(seen.length >= 1);
    } finally {
      await live.close();
    }
  });
});
