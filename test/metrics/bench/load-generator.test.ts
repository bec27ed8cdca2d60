// The load generator against a local fake OpenAI server: exact request and token counts, the
// closed-loop concurrency cap, Poisson schedules (seeded, replayable), errors by class (HTTP
// status, timeout, connection, broken streams) and SSE events split across reads.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { completionsUrl, poissonSchedule, runLoad, seededRandom } from '../../../src/metrics/loadgen/load-generator.js';
import { summarizeLoad } from '../../../src/metrics/loadgen/load-summary.js';
import { syntheticLoadPrompts } from '../../../src/metrics/loadgen/prompt-source.js';
import { startFakeServer, type FakeServer } from './fake-openai-server.js';

let fake: FakeServer;
before(async () => {
  fake = await startFakeServer();
});
after(async () => {
  await fake.close();
});

test('completions URL from a root or a /v1 base', () => {
  assert.equal(completionsUrl('http://h:1'), 'http://h:1/v1/completions');
  assert.equal(completionsUrl('http://h:1/v1/'), 'http://h:1/v1/completions');
});

test('closed loop: every prompt sent once, exact token counts, TTFT and ITL per chunk', async () => {
  fake.requests.length = 0;
  const prompts = syntheticLoadPrompts(10, 16, 5, 100, 7);
  let inFlight = 0;
  let maxInFlight = 0;
  const countingFetch: typeof fetch = async (input, init) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const res = await fetch(input, init);
      const text = await res.text(); // buffer the whole stream, then hand it on
      return new Response(text, { status: res.status, headers: res.headers });
    } finally {
      inFlight--;
    }
  };
  const run = await runLoad({ baseUrl: fake.url, model: 'fake-model', apiKey: 'k1', prompts, concurrency: 3, fetchImpl: countingFetch });
  assert.equal(fake.requests.length, 10);
  assert.equal(maxInFlight, 3);
  assert.ok(fake.requests.every((r) => r.stream && r.ignoreEos && r.maxTokens === 5 && r.auth === 'Bearer k1'));
  assert.deepEqual(fake.requests.map((r) => r.prompt).sort(), prompts.map((p) => p.prompt).sort());
  assert.ok(
    run.results.every((r) => r.ok && r.outputTokens === 5 && r.promptTokens === 16 && r.itlMs.length === 4 && r.finishReason === 'length'),
  );
  const s = summarizeLoad(run);
  assert.equal(s.numOk, 10);
  assert.equal(s.generatedTokens, 50);
  assert.equal(s.promptTokens, 160);
  assert.equal(s.ttftMs.count, 10);
  assert.equal(s.itlMs.count, 40);
  assert.equal(s.errors.total, 0);
  assert.equal(s.goodput, null);
});

test('errors by class: HTTP 503, timeout, connection refused, mid-stream error, no [DONE], bad JSON', async () => {
  const one = syntheticLoadPrompts(2, 4, 3, 50, 1);
  const by = async (model: string, baseUrl = fake.url, timeoutMs?: number) => {
    const run = await runLoad({ baseUrl, model, prompts: one, concurrency: 2, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    return summarizeLoad(run);
  };
  assert.deepEqual((await by('err503')).errors, { total: 2, byClass: { http_503: 2 } });
  assert.deepEqual((await by('hang', fake.url, 200)).errors, { total: 2, byClass: { timeout: 2 } });
  const closed = await startFakeServer();
  const deadUrl = closed.url;
  await closed.close();
  assert.deepEqual((await by('fake-model', deadUrl)).errors, { total: 2, byClass: { connection: 2 } });
  const mid = await by('midstream');
  assert.deepEqual(mid.errors, { total: 2, byClass: { stream: 2 } });
  assert.equal(mid.numOk, 0);
  assert.equal(mid.generatedTokens, 0, 'failed requests add no tokens');
  assert.deepEqual((await by('nodone')).errors, { total: 2, byClass: { stream: 2 } });
  assert.deepEqual((await by('badjson')).errors, { total: 2, byClass: { stream: 2 } });
});

test('Poisson arrivals: seeded schedule, mean gap near 1/rate, every request sent', async () => {
  const a = poissonSchedule(2000, 50, 42);
  assert.deepEqual(a, poissonSchedule(2000, 50, 42));
  assert.notDeepEqual(a, poissonSchedule(2000, 50, 43));
  assert.equal(a[0], 0);
  assert.ok(a.every((t, i) => i === 0 || t >= a[i - 1]!));
  const meanGapMs = a[a.length - 1]! / (a.length - 1);
  assert.ok(Math.abs(meanGapMs - 20) < 2, `mean gap ${meanGapMs} ms, expected ~20`);
  const r = seededRandom(1);
  assert.ok(Array.from({ length: 1000 }, r).every((x) => x >= 0 && x < 1));
  fake.requests.length = 0;
  const run = await runLoad({
    baseUrl: fake.url,
    model: 'fake-model',
    prompts: syntheticLoadPrompts(6, 4, 2, 50, 3),
    concurrency: Infinity,
    requestRate: 1000,
    seed: 5,
  });
  assert.equal(fake.requests.length, 6);
  assert.equal(summarizeLoad(run).generatedTokens, 12);
});
