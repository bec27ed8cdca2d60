// LiveSeries: rates between ticks, latency percentiles over the last ticks, the capacity window, and
// incremental reads (since) with columns that appear later (a GPU) filled with null before.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LiveSeries, percentile, type LiveSnapshot } from '../../src/metrics/live-series.js';

const COST = {
  busyUsd: 0,
  allInUsd: 0,
  busyUsdPer1k: Number.NaN,
  allInUsdPer1k: Number.NaN,
  generatedTokens: 0,
  wallSeconds: 0,
  busySeconds: 0,
};
const snap = (over: Partial<LiveSnapshot> = {}): LiveSnapshot => ({
  generatedTokens: 0,
  prefixHitTokens: 0,
  prefixQueryTokens: 0,
  engine: null,
  ttftSeconds: [],
  itlSeconds: [],
  cost: COST,
  gpu: null,
  ...over,
});

describe('LiveSeries', () => {
  it('percentile by nearest rank', () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
    assert.equal(percentile([7], 1), 7);
  });

  it('rates, hit rate and latency percentiles over the last ticks; NaN cost becomes null', () => {
    const s = new LiveSeries({ latencyTicks: 2 });
    s.record(1000, snap());
    const r1 = s.record(
      3000,
      snap({ generatedTokens: 100, prefixQueryTokens: 40, prefixHitTokens: 10, ttftSeconds: [0.1, 0.3], itlSeconds: [0.01] }),
    );
    assert.equal(r1.out_tok_s, 50);
    assert.equal(r1.prefix_hit_pct, 25);
    assert.equal(r1.ttft_p50_ms, 100);
    assert.equal(r1.ttft_p99_ms, 300);
    assert.equal(r1.usd_per_1k_busy, null);
    const r2 = s.record(4000, snap({ generatedTokens: 100, prefixQueryTokens: 40, prefixHitTokens: 10, ttftSeconds: [0.2] }));
    assert.equal(r2.out_tok_s, 0);
    assert.equal(r2.prefix_hit_pct, null); // no lookups this tick
    assert.equal(r2.ttft_p50_ms, 200); // [0.1, 0.2, 0.3] over the last 2 ticks
    const r3 = s.record(5000, snap({ generatedTokens: 100 }));
    assert.equal(r3.ttft_p50_ms, 200); // the 0.1/0.3 tick left the window
  });

  it('keeps the last `capacity` rows; since() reads only newer rows, late columns are null before', () => {
    const s = new LiveSeries({ capacity: 3 });
    for (let i = 1; i <= 4; i++) s.record(i * 1000, snap({ generatedTokens: i * 10 }));
    const gpu = {
      available: true,
      reason: '',
      devices: [
        {
          index: 0,
          name: 'G',
          utilizationPct: 50,
          memoryUsedBytes: 2 ** 30,
          memoryTotalBytes: 2 ** 31,
          powerWatts: 100,
          temperatureC: 50,
          smClockMHz: 1500,
        },
      ],
    };
    s.record(5000, snap({ generatedTokens: 50, gpu }));
    assert.equal(s.numRows, 3);
    const all = s.since();
    assert.deepEqual(all.t, [3000, 4000, 5000]);
    assert.deepEqual(all.gpu0_util_pct, [null, null, 50]);
    assert.deepEqual(all.gpu0_mem_total_gib, [null, null, 2]);
    assert.deepEqual(s.since(4000).t, [5000]);
    assert.deepEqual(s.since(5000).t, []);
  });
});
