// The soak client's bookkeeping against a loopback SSE server whose every stream is whole (headers at
// once, the rest later, always [DONE]): whatever disconnects the client draws, it must count no
// stream as truncated. A before-headers disconnect whose headers win the race is an ordinary
// request; its abort must not then cut the body the client goes on reading.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Rng } from './mutation/mutator.js';
import { soakRequest, type RequestOutcome } from '../../bench/soak/soak-clients.js';

/** Time between the headers and the rest of each stream: longer than any before-headers abort delay below. */
const BODY_DELAY_MS = 150;
let server: Server;
let url: string;

const chunk = (finish: string | null): string => {
  const choice = { index: 0, delta: { content: 'x' }, finish_reason: finish };
  return `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [choice] })}\n\n`;
};

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    res.write(chunk(null));
    const t = setTimeout(() => {
      for (let i = 0; i < 20; i++) res.write(chunk(null));
      res.end(`${chunk('stop')}data: [DONE]\n\n`);
    }, BODY_DELAY_MS);
    res.on('close', () => clearTimeout(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('soak client: disconnects it drew (before headers, after the first chunk, mid-stream) never count as truncated', async () => {
  const spec = {
    url,
    model: 'm',
    headers: {},
    maxTokens: 8,
    disconnectShare: 1,
    timeoutMs: 30_000,
    t0: performance.now(),
    kind: 'stream-chat' as const,
    // Long enough that the headers (sent at once) usually arrive before the abort, short enough that
    // the abort fires while the client still waits for the rest of the body.
    beforeHeadersMs: 100,
  };
  // A few at a time over warm keep-alive connections, so the headers take about a millisecond.
  await soakRequest({ ...spec, disconnectShare: 0 }, new Rng(1));
  const outcomes: RequestOutcome[] = [];
  for (let i = 0; i < 60; i += 4) outcomes.push(...(await Promise.all([0, 1, 2, 3].map((j) => soakRequest(spec, new Rng(1000 + i + j))))));
  const truncated = outcomes.filter((o) => o.truncated);
  assert.deepEqual(
    truncated.map((o) => o.truncation),
    [],
  );
  // The race this guards is exercised: some before-headers draws got their headers first and were read to the end.
  const headersWon = outcomes.filter((o) => o.drawnDisconnect === 'before-headers' && o.disconnect === null && o.status === 200);
  assert.ok(headersWon.length > 0, JSON.stringify(outcomes.map((o) => [o.drawnDisconnect, o.disconnect, o.status])));
  for (const o of headersWon) assert.deepEqual(o.finishReasons, ['stop']);
  for (const mode of ['after-first-chunk', 'mid-stream'] as const)
    assert.ok(
      outcomes.some((o) => o.disconnect === mode),
      mode,
    );
});

test('soak client: a stream that really ends without [DONE] is truncated, with what the client saw', async () => {
  const cut = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(chunk(null) + chunk('stop'));
  });
  await new Promise<void>((r) => cut.listen(0, '127.0.0.1', r));
  try {
    const o = await soakRequest(
      {
        url: `http://127.0.0.1:${(cut.address() as AddressInfo).port}`,
        model: 'm',
        headers: {},
        maxTokens: 8,
        disconnectShare: 0,
        timeoutMs: 30_000,
        t0: performance.now(),
        kind: 'stream-chat',
      },
      new Rng(7),
    );
    assert.equal(o.truncated, true);
    assert.equal(o.truncation?.reason, 'no-done');
    assert.equal(o.truncation?.events, 2);
    assert.equal(o.truncation?.abortReason, null);
    assert.match(o.truncation?.lastEvent ?? '', /"finish_reason":"stop"/);
  } finally {
    await new Promise<void>((r) => cut.close(() => r()));
  }
});
