// Percentile maths for bench records: linear interpolation between closest ranks (numpy's default,
// 'linear'), so p50 of [1, 2, 3, 4] is 2.5. Pure functions; an empty sample gives nulls, never NaN.

export interface Distribution {
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly mean: number | null;
  readonly min: number | null;
  readonly max: number | null;
  readonly count: number;
}

/** The p-th percentile (0..100) of an ascending-sorted sample; null when empty. */
export function percentileSorted(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  return a + (sorted[hi]! - a) * (rank - lo);
}

export function percentile(xs: readonly number[], p: number): number | null {
  return percentileSorted(
    [...xs].sort((a, b) => a - b),
    p,
  );
}

export function distribution(xs: readonly number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b);
  let sum = 0;
  for (const x of s) sum += x;
  return {
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    mean: s.length === 0 ? null : sum / s.length,
    min: s.length === 0 ? null : s[0]!,
    max: s.length === 0 ? null : s[s.length - 1]!,
    count: s.length,
  };
}

/** Median with the spread of repeated runs (the shared-machine summary: median [min..max]). */
export interface Spread {
  readonly median: number | null;
  readonly min: number | null;
  readonly max: number | null;
  readonly runs: readonly number[];
}

export function spread(runs: readonly number[]): Spread {
  const d = distribution(runs);
  return { median: d.p50, min: d.min, max: d.max, runs: [...runs] };
}
