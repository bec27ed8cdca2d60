// SSE details on the real engine: `: ping` while the first token is pending (queued behind another
// request), include_usage layout on the wire, n > 1 streams (role first and finish_reason last per
// choice), and a disconnecting client aborting its request.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOS } from './byte-frontend.js';
import { rawSse, startRealLive, until } from './helpers.js';
import { bytesOf, greedyText } from './real-engine.js';

const json = { 'content-type': 'application/json' };

/** Reads an SSE body, collecting data payloads and comments, until `stop()` holds or the body ends. */
interface SseReader {
  events: string[];
  comments: string[];
  until(stop: () => boolean): Promise<void>;
}

async function readSse(body: ReadableStream<Uint8Array>): Promise<SseReader> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  const out = { events: [] as string[], comments: [] as string[] };
  let buf = '';
  let ended = false;
  return {
    ...out,
    async until(stop) {
      while (!ended && !stop()) {
        const { value, done } = await reader.read();
        if (done) ended = true;
        else buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          for (const line of buf.slice(0, i).split('\n')) {
            if (line.startsWith('data: ')) out.events.push(line.slice(6));
            else if (line.startsWith(':')) out.comments.push(line.slice(1).trim());
          }
          buf = buf.slice(i + 2);
        }
      }
    },
  };
}

describe('SSE streaming', () => {
  it('sends `: ping` while the first token is pending, then chunks and [DONE]', async () => {
    // One sequence per step: the request waits behind a long one, so its first token is pending
    // until the test ends the long one (after seeing the pings).
    const live = await startRealLive({ engine: { contextLen: 4096, maxNumSeqs: 1 }, server: { pingIntervalMs: 10 } });
    try {
      const blocker = new AbortController();
      const longBodyJson = JSON.stringify({ prompt: 'a', max_tokens: 4000, ignore_eos: true, stream: true });
      const long = await fetch(`${live.url}/v1/completions`, { method: 'POST', headers: json, signal: blocker.signal, body: longBodyJson });
      const longBody = long.body!.getReader();
      await longBody.read(); // running
      const res = await fetch(`${live.url}/v1/completions`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ prompt: 'a', max_tokens: 2, temperature: 0, stream: true }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.ok(res.headers.get('x-request-id'));
      const r = await readSse(res.body!);
      await r.until(() => r.comments.filter((c) => c === 'ping').length >= 2);
      assert.equal(r.events.length, 0, 'no token before the long request ends');
      blocker.abort();
      await r.until(() => false);
      assert.ok(r.comments.filter((c) => c === 'ping').length >= 2, `pings: ${r.comments.length}`);
      assert.equal(r.events.at(-1), '[DONE]');
      const chunks = r.events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { text: string }[] });
      assert.equal(chunks.map((c) => c.choices[0]!.text).join(''), await greedyText([BOS, ...bytesOf('a')], 2));
    } finally {
      await live.close();
    }
  });

  it('n=2 streams: each choice starts with role and ends with finish_reason; usage chunk last', async () => {
    const live = await startRealLive();
    try {
      const r = await rawSse(`${live.url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'x' }],
        n: 2,
        max_tokens: 3,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      assert.equal(r.events.at(-1), '[DONE]');
      type Chunk = {
        object: string;
        usage: unknown;
        choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
      };
      const chunks = r.events.slice(0, -1).map((e) => JSON.parse(e) as Chunk);
      const expected = await greedyText(bytesOf('<user>x\n<assistant>'), 3);
      for (const idx of [0, 1]) {
        const mine = chunks.filter((c) => c.choices[0]?.index === idx);
        assert.equal(mine[0]!.choices[0]!.delta.role, 'assistant');
        assert.equal(mine.filter((c) => c.choices[0]!.delta.role !== undefined).length, 1);
        assert.equal(mine.at(-1)!.choices[0]!.finish_reason, 'length');
        assert.equal(
          mine.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null),
          true,
        );
        assert.equal(mine.map((c) => c.choices[0]!.delta.content ?? '').join(''), expected);
      }
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.equal((last.usage as { completion_tokens: number }).completion_tokens, 6);
      for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
      assert.equal(
        chunks.every((c) => c.object === 'chat.completion.chunk'),
        true,
      );
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
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          signal: ac.signal,
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
      await until(() => live.server.inFlight === 0 && live.engine.stats().numRunning === 0, 'the aborted requests to leave');
      assert.equal(live.server.inFlight, 0);
      assert.equal(live.engine.stats().numRunning, 0, 'the aborted requests left the engine');
    } finally {
      await live.close();
    }
  });
});
