// The latency-vs-throughput trade-off a capacity planner reads: the Pareto frontier of bench points
// (no other point has at least the throughput and at most the latency, better in one of them).

export interface TradeoffPoint {
  /** Output tok/s (higher is better). */
  readonly throughput: number;
  /** A latency in ms (lower is better). */
  readonly latency: number;
}

/** The non-dominated points, by ascending throughput (so latency ascends too). Non-finite ones are ignored. */
export function paretoFrontier<T extends TradeoffPoint>(points: readonly T[]): T[] {
  const ok = points.filter((p) => Number.isFinite(p.throughput) && Number.isFinite(p.latency));
  // Highest throughput first (ties: lowest latency first); keep a point when its latency beats every kept one.
  const sorted = [...ok].sort((a, b) => b.throughput - a.throughput || a.latency - b.latency);
  const out: T[] = [];
  let best = Infinity;
  for (const p of sorted) {
    if (p.latency < best) {
      out.push(p);
      best = p.latency;
    }
  }
  return out.reverse();
}
