// Percentile maths, hand-computed: linear interpolation between closest ranks (numpy 'linear').
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { distribution, percentile, percentileSorted, spread } from '../../../src/metrics/bench/percentiles.js';

const close = (a: number | null, b: number): void => assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test('percentiles of [1, 2, 3, 4]: rank = p/100 x (n - 1)', () => {
  close(percentile([4, 1, 3, 2], 50), 2.5); // rank 1.5 -> 2 + 0.5 x 1
  close(percentile([4, 1, 3, 2], 90), 3.7); // rank 2.7 -> 3 + 0.7 x 1
  close(percentile([4, 1, 3, 2], 99), 3.97); // rank 2.97
  close(percentile([4, 1, 3, 2], 0), 1);
  close(percentile([4, 1, 3, 2], 100), 4);
});

test('percentiles of 1..100 and of one value', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  close(percentile(xs, 50), 50.5); // rank 49.5
  close(percentile(xs, 90), 90.1); // rank 89.1 -> 90 + 0.1
  close(percentile(xs, 99), 99.01); // rank 98.01 -> 99 + 0.01
  close(percentile([7], 99), 7);
});

test('empty samples give nulls, out-of-range p throws', () => {
  assert.equal(percentileSorted([], 50), null);
  const d = distribution([]);
  assert.deepEqual([d.p50, d.p99, d.mean, d.min, d.max, d.count], [null, null, null, null, null, 0]);
  assert.throws(() => percentile([1], 101), RangeError);
});

test('distribution and spread', () => {
  const d = distribution([10, 20, 30, 40, 50]);
  close(d.p50, 30);
  close(d.p90, 46); // rank 3.6 -> 40 + 0.6 x 10
  close(d.p99, 49.6); // rank 3.96
  close(d.mean, 30);
  assert.equal(d.min, 10);
  assert.equal(d.max, 50);
  const s = spread([3, 1, 2]);
  assert.deepEqual([s.median, s.min, s.max, s.runs], [2, 1, 3, [3, 1, 2]]);
});
