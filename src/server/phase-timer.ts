// Per engine request of one HTTP request: when its first and last tokens arrived, for the prefill
// time (first schedule -> first token, ServerMetrics holds the schedule time) and the mean time per
// output token after the first (per choice: n choices of one prompt decode side by side).

import type { ServerMetrics } from '../metrics/server-metrics.js';

export class PhaseTimer {
  private readonly firstMs: (number | null)[];
  private readonly lastMs: (number | null)[];
  private readonly numTokens: number[];

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly requestIds: readonly string[],
    private readonly n: number,
  ) {
    this.firstMs = requestIds.map(() => null);
    this.lastMs = requestIds.map(() => null);
    this.numTokens = requestIds.map(() => 0);
  }

  onTokens(sub: number, count: number, nowMs: number): void {
    if (count <= 0) return;
    if (this.firstMs[sub] === null) {
      this.firstMs[sub] = nowMs;
      this.metrics.observePrefillDone(this.requestIds[sub]!, nowMs);
    }
    this.lastMs[sub] = nowMs;
    this.numTokens[sub]! += count;
  }

  /** Finished: one time-per-output-token sample per engine request that decoded past its first token. */
  finish(): void {
    for (let i = 0; i < this.requestIds.length; i++) {
      const first = this.firstMs[i]!;
      const perChoice = this.numTokens[i]! / this.n;
      if (first !== null && perChoice > 1) this.metrics.observeTimePerOutputToken((this.lastMs[i]! - first) / 1000 / (perChoice - 1));
    }
    this.forget();
  }

  /** Failed or aborted: drop the schedule times still held for requests that never produced a token. */
  forget(): void {
    for (let i = 0; i < this.requestIds.length; i++) if (this.firstMs[i] === null) this.metrics.forgetRequest(this.requestIds[i]!);
  }
}
