// A complete BenchRecord for report and peer tests; override any field.
import { BENCH_RECORD_SCHEMA, type BenchRecord } from '../../../src/metrics/bench/bench-record.js';
import { distribution } from '../../../src/metrics/bench/percentiles.js';

export function fakeRecord(over: Partial<BenchRecord> = {}): BenchRecord {
  return {
    schema: BENCH_RECORD_SCHEMA, kind: 'engine', engine: 'tokenmill', engineVersion: null, date: '2026-11-25T00:00:00Z', commit: 'abc', dirty: false,
    deviceKind: 'cpu', device: 'Test CPU (1 threads)', numThreads: 1, model: 'stories15M', dtype: 'f32', inLen: 128, outLen: 128, concurrency: 1,
    requestRate: null, numRequests: 4, numOk: 4, wallS: 2, promptTokens: 512, generatedTokens: 512, tokPerS: 256,
    tokPerSSpread: { median: 256, min: 250, max: 260, runs: [250, 256, 260] },
    ttftMs: distribution([10, 12, 14]), itlMs: distribution([3, 4, 5]), e2eMs: distribution([500]), goodput: null, errors: { total: 0, byClass: {} },
    bytesPerDecodeStep: 6e7, gbPerS: 15, peakGbPerS: 20, peakSource: 'measured', pctPeak: 75, usdPerHour: 1, usdPer1kTok: 0.00108, usdPer1MTok: 1.08,
    avgPowerW: null, joulesPerTok: null, fingerprint: null, command: 'tokenmill bench engine', notes: [], ...over,
  };
}
