// SSE details: `: ping` during a long prefill, include_usage layout on the wire, n > 1 streams
// (role first and finish_reason last per choice), and a disconnecting client aborting its request.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { rawSse, startLive, startRealLive } from './helpers.js';

describe('SSE streaming', () => {
  it('sends `: ping` while the first token is pending, then chunks and [DONE]', async () => {
    const live = await startLive({ engine: { prefillMs: 150 }, server: { pingIntervalMs: 25 } });
    try {
      const r = await rawSse(`${live.url}/v1/completions`, { prompt: 'a', max_tokens: 2, temperature: 0, stream: true });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(r.headers.get('cache-control'), 'no-cache');
      assert.ok(r.headers.get('x-request-id'));
      assert.ok(r.comments.filter((c) => c === 'ping').length >= 2, `pings: ${r.comments.length}`);
      assert.equal(r.events.at(-1), '[DONE]');
      const chunks = r.events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { text: string }[] });
      assert.equal(chunks.map((c) => c.choices[0]!.text).join(''), 'th');
    } finally {
      await live.close();
    }
  });

  it('n=2 streams: each choice starts with role and ends with finish_reason; usage chunk last', async () => {
    const live = await startLive();
    try {
      const r = await rawSse(`${live.url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'x' }], n: 2, max_tokens: 3, temperature: 0, stream: true, stream_options: { include_usage: true },
      });
      assert.equal(r.events.at(-1), '[DONE]');
      type Chunk = { object: string; usage: unknown; choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[] };
      const chunks = r.events.slice(0, -1).map((e) => JSON.parse(e) as Chunk);
      for (const idx of [0, 1]) {
        const mine = chunks.filter((c) => c.choices[0]?.index === idx);
        assert.equal(mine[0]!.choices[0]!.delta.role, 'assistant');
        assert.equal(mine.filter((c) => c.choices[0]!.delta.role !== undefined).length, 1);
        assert.equal(mine.at(-1)!.choices[0]!.finish_reason, 'length');
        assert.equal(mine.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null), true);
        assert.equal(mine.map((c) => c.choices[0]!.delta.content ?? '').join(''), 'the');
      }
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.equal((last.usage as { completion_tokens: number }).completion_tokens, 6);
      for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
      assert.equal(chunks.every((c) => c.object === 'chat.completion.chunk'), true);
    } finally {
      await live.close();
    }
  });

  it('a client that disconnects aborts its engine request (stream and non-stream)', async () => {
    const live = await startRealLive();
    try {
      for (const stream of [true, false]) {
        const ac = new AbortController();
        const res = fetch(`${live.url}/v1/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
          body: JSON.stringify({ prompt: 'a', max_tokens: 250, ignore_eos: true, stream }),
        });
        const admitted = live.engine.requests.length + 1;
        if (stream) {
          const r = await res;
          const reader = r.body!.getReader();
          await reader.read();
        } else {
          res.catch(() => undefined);
          await live.engine.admittedCount(admitted);
        }
        const before = live.engine.aborted.length;
        ac.abort();
        await live.engine.abortedCount(before + 1);
        assert.equal(live.engine.aborted.at(-1), live.engine.requests.at(-1)!.requestId, `stream=${stream}`);
      }
      for (let i = 0; i < 100 && (live.server.inFlight > 0 || live.engine.stats().numRunning > 0); i++) await sleep(10);
      assert.equal(live.server.inFlight, 0);
      assert.equal(live.engine.stats().numRunning, 0, 'the aborted requests left the engine');
    } finally {
      await live.close();
    }
  });
});
