// Backpressure on the real engine (tiny model): a full waiting queue (an explicit --max-queue)
// answers 503 + Retry-After, and a per-key token bucket answers 429 + Retry-After; the openai client
// sees its typed errors. The default admission bounds are in admission.test.ts.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { openSse, startRealLive, until } from './helpers.js';
import { TINY_MODEL_ID } from './real-engine.js';

const chat = { model: TINY_MODEL_ID, messages: [{ role: 'user' as const, content: 'x' }], max_tokens: 2 };

describe('backpressure', () => {
  it('503 + Retry-After when the waiting queue is at --max-queue', async () => {
    // One sequence per step: a long request runs, a second waits, and the queue is at --max-queue 1.
    const live = await startRealLive({ engine: { contextLen: 4096, maxNumSeqs: 1, maxWaitingRequests: 1 } });
    const ac = new AbortController();
    try {
      const long = { model: TINY_MODEL_ID, prompt: 'a', max_tokens: 4000, ignore_eos: true, stream: true };
      const first = await openSse(`${live.url}/v1/completions`, long, ac.signal);
      await first.firstEvent; // running
      // Its response headers come with its first event, so it is not awaited here.
      const second = openSse(`${live.url}/v1/completions`, long, ac.signal);
      await until(() => live.engine.stats().numWaiting >= 1, 'the second request to wait in the engine queue');
      await assert.rejects(live.client.chat.completions.create(chat), (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 503);
        assert.equal(e.code, 'server_overloaded');
        assert.equal(e.headers?.get('retry-after'), '1');
        return true;
      });
      ac.abort(); // both long requests' clients go away
      await Promise.all([first.done.catch(() => null), second.then((s) => s.done).catch(() => null)]);
      await until(() => live.engine.stats().numWaiting === 0 && live.engine.stats().numRunning === 0, 'the aborted requests to leave');
      const ok = await live.client.chat.completions.create(chat);
      assert.equal(ok.choices.length, 1);
    } finally {
      ac.abort();
      await live.close();
    }
  });

  it('503 + Retry-After when the real engine refuses (its waiting queue is full)', async () => {
    // One sequence per step and one waiting slot: a running request plus a queued one fill the engine.
    const live = await startRealLive({ engine: { maxNumSeqs: 1, maxWaitingRequests: 1 } });
    try {
      const long = { model: TINY_MODEL_ID, prompt: 'a', max_tokens: 200, ignore_eos: true, stream: true };
      const first = await openSse(`${live.url}/v1/completions`, long);
      await first.firstEvent; // running
      const second = openSse(`${live.url}/v1/completions`, long);
      await live.engine.admittedCount(2); // queued behind it
      const res = await fetch(`${live.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: TINY_MODEL_ID, prompt: 'a', stream: true }),
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'server_overloaded');
      assert.equal((await first.done).at(-1), '[DONE]');
      assert.equal((await (await second).done).at(-1), '[DONE]');
    } finally {
      await live.close();
    }
  });

  it('429 + Retry-After from the per-key token bucket', async () => {
    const live = await startRealLive({ server: { rateLimit: { ratePerSecond: 0.01, burst: 2 } } });
    try {
      await live.client.chat.completions.create(chat);
      await live.client.chat.completions.create(chat);
      await assert.rejects(live.client.chat.completions.create(chat), (e: unknown) => {
        assert.ok(e instanceof OpenAI.RateLimitError);
        assert.equal(e.status, 429);
        assert.equal(e.code, 'rate_limit_exceeded');
        assert.ok(Number(e.headers?.get('retry-after')) >= 1);
        return true;
      });
      // Probes are not rate limited.
      assert.equal((await fetch(`${live.url}/health`)).status, 200);
    } finally {
      await live.close();
    }
  });
});
