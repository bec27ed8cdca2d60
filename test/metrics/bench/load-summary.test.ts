// Goodput and summaries over hand-made request results (no server): SLOs on TTFT and on each
// request's mean inter-token latency, failed requests never count, unset SLOs always pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestResult } from '../../../src/metrics/loadgen/load-generator.js';
import { errorCounts, meetsSlo, summarizeLoad, tpotMs } from '../../../src/metrics/loadgen/load-summary.js';

function req(
  i: number,
  ttftMs: number | null,
  e2eMs: number,
  outputTokens: number,
  ok = true,
  errorClass: RequestResult['errorClass'] = null,
): RequestResult {
  return {
    index: i,
    ok,
    errorClass,
    errorMessage: null,
    sentAtMs: 0,
    ttftMs,
    itlMs: [],
    e2eMs,
    outputTokens,
    promptTokens: 10,
    finishReason: ok ? 'length' : null,
  };
}

test('tpot = (e2e - ttft) / (tokens - 1)', () => {
  assert.equal(tpotMs(req(0, 100, 1090, 100)), 10);
  assert.equal(tpotMs(req(0, 100, 100, 1)), null);
  assert.equal(tpotMs(req(0, null, 100, 5)), null);
});

test('goodput under TTFT <= 200 ms and TPOT <= 20 ms', () => {
  const results = [
    req(0, 100, 1090, 100), // ttft 100, tpot 10: good
    req(1, 300, 1290, 100), // ttft 300: bad
    req(2, 150, 3120, 100), // tpot 30: bad
    req(3, 200, 2180, 100), // ttft 200 (equal), tpot 20 (equal): good
    req(4, null, 5, 0, false, 'http_503'), // failed: never good
  ];
  const s = summarizeLoad({ results, wallS: 2 }, { ttftMs: 200, itlMs: 20 });
  assert.equal(s.numOk, 4);
  assert.equal(s.generatedTokens, 400);
  assert.equal(s.tokPerS, 200);
  assert.deepEqual(s.goodput, { sloTtftMs: 200, sloItlMs: 20, numGoodRequests: 2, goodRequestsPerS: 1, goodTokPerS: 100 });
  assert.deepEqual(s.errors, { total: 1, byClass: { http_503: 1 } });
  assert.equal(s.ttftMs.p50, 175); // [100, 150, 200, 300]: rank 1.5
  assert.equal(meetsSlo(results[0]!, {}), true);
  assert.equal(meetsSlo(results[4]!, {}), false);
  // Only a TTFT SLO: the slow-decoding request passes.
  assert.equal(summarizeLoad({ results, wallS: 2 }, { ttftMs: 200 }).goodput?.numGoodRequests, 3);
});

test('error counts by class', () => {
  const rs = [
    req(0, null, 1, 0, false, 'timeout'),
    req(1, null, 1, 0, false, 'timeout'),
    req(2, null, 1, 0, false, 'connection'),
    req(3, 1, 2, 2),
  ];
  assert.deepEqual(errorCounts(rs), { total: 3, byClass: { timeout: 2, connection: 1 } });
});
