// Derived bench numbers: cost through cost.ts (hand-computed), bytes per decode step, GB/s and %
// of peak, joules per token, file names, and reading records back from a run file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { usdPer1kTokens } from '../../../src/metrics/cost.js';
import {
  BENCH_RECORD_SCHEMA,
  bandwidthFields,
  bytesPerDecodeStep,
  costFields,
  joulesPerToken,
  recordFileName,
  recordsOf,
} from '../../../src/metrics/bench/bench-record.js';

const close = (a: number | null, b: number): void =>
  assert.ok(a !== null && Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} != ${b}`);

test('cost: $3.60/h for 10 s making 1,000 tokens = $0.01 per 1k = $10 per 1M (the cost.ts formula)', () => {
  const c = costFields(3.6, 10, 1000);
  close(c.usdPer1kTok, 0.01);
  close(c.usdPer1MTok, 10);
  close(c.usdPer1kTok, usdPer1kTokens(3.6, 10, 1000));
  // $2.99/h, 60 s, 12,345 tokens: 2.99 / 3600 x 60 / 12.345
  close(costFields(2.99, 60, 12345).usdPer1MTok, (((2.99 / 3600) * 60) / 12.345) * 1000);
  assert.deepEqual(costFields(1, 10, 0), { usdPer1kTok: null, usdPer1MTok: null });
  assert.deepEqual(costFields(0, 10, 100), { usdPer1kTok: 0, usdPer1MTok: 0 });
});

test('bytes per decode step, GB/s and % of peak', () => {
  // 1 GB of weights + 8 seqs x 1,000 tokens x 100 kB/token = 1 GB + 0.8 GB
  const b = bytesPerDecodeStep({ weightBytes: 1e9, kvBytesPerToken: 1e5, batch: 8, avgContextLen: 1000 });
  assert.equal(b, 1.8e9);
  const bw = bandwidthFields(b, 100, 360); // 100 steps/s x 1.8 GB = 180 GB/s = 50% of 360
  close(bw.gbPerS, 180);
  close(bw.pctPeak, 50);
  assert.deepEqual(bandwidthFields(b, 100, null), { gbPerS: 180, pctPeak: null });
  assert.deepEqual(bandwidthFields(null, 100, 360), { gbPerS: null, pctPeak: null });
  assert.deepEqual(bandwidthFields(b, 0, 360), { gbPerS: null, pctPeak: null });
});

test('joules per token = mean watts x seconds / tokens', () => {
  close(joulesPerToken(300, 10, 1500), 2);
  assert.equal(joulesPerToken(null, 10, 1500), null);
  assert.equal(joulesPerToken(300, 10, 0), null);
});

test('record file names and reading records back', () => {
  assert.equal(
    recordFileName('engine', 'tokenmill cpu/x', new Date('2026-11-25T01:02:03.456Z'), 'abcdef0123456789'),
    'engine-tokenmill_cpu_x-2026-11-25-01-02-03-abcdef01.json',
  );
  const rec = { schema: BENCH_RECORD_SCHEMA, engine: 'tokenmill' };
  assert.equal(recordsOf({ records: [rec, { schema: 'other', engine: 'x' }] }).length, 1);
  assert.equal(recordsOf([rec, rec]).length, 2);
  assert.equal(recordsOf(rec).length, 1);
  assert.equal(recordsOf({ bench: 'cpu-e2e', records: [{ model: 'x' }] }).length, 0);
});
