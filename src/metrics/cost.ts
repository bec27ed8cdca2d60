// THE cost formula (ARCHITECTURE.md "Cost"): usdPer1kTok = usdPerHour / 3600 * wallSeconds /
// (generatedTokens / 1000). Two bases use it: *busy* (wall time of engine steps, apportioned to the
// requests in each step by the tokens each processed) and *all-in* (the machine's whole uptime,
// idle included: what the owner pays). Also the ledger of totals per API key and sliding windows.
// Never define a second cost formula anywhere else: import these.

/** USD per 1,000 generated tokens. NaN when no tokens were generated (cost per token undefined). */
export function usdPer1kTokens(usdPerHour: number, wallSeconds: number, generatedTokens: number): number {
  if (!(generatedTokens > 0)) return Number.NaN;
  return ((usdPerHour / 3600) * wallSeconds) / (generatedTokens / 1000);
}

/** USD that wallSeconds of the machine cost at usdPerHour. */
export function wallCostUsd(usdPerHour: number, wallSeconds: number): number {
  return (usdPerHour / 3600) * wallSeconds;
}

export interface StepShare {
  readonly requestId: string;
  /** Tokens this step processed for the request: its prefill chunk, or 1 for a decode. */
  readonly numTokens: number;
}

/**
 * Split one step's wall time (as USD) over the requests in it, in proportion to the tokens the step
 * processed for each. A prefill chunk is thus charged to its own request: the decode requests that
 * shared its step pay for their one token each, never for the chunk. No wall time is dropped: the
 * shares sum to wallCostUsd(usdPerHour, stepWallSeconds). Returns requestId -> USD.
 */
export function apportionStepCost(usdPerHour: number, stepWallSeconds: number, shares: readonly StepShare[]): Map<string, number> {
  const out = new Map<string, number>();
  const stepUsd = wallCostUsd(usdPerHour, stepWallSeconds);
  let total = 0;
  for (const s of shares) total += Math.max(0, s.numTokens);
  for (const s of shares) {
    // Nothing to weigh by (should not happen for a real step): split evenly.
    const part = total > 0 ? (stepUsd * Math.max(0, s.numTokens)) / total : stepUsd / shares.length;
    out.set(s.requestId, (out.get(s.requestId) ?? 0) + part);
  }
  return out;
}

export interface AccountTotals {
  numRequests: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

interface WindowEntry {
  readonly atMs: number;
  readonly wallSeconds: number;
  readonly generatedTokens: number;
}

/** Both bases over some span: USD spent and USD per 1k generated tokens (NaN without tokens). */
export interface CostSummary {
  readonly busyUsd: number;
  readonly allInUsd: number;
  readonly busyUsdPer1k: number;
  readonly allInUsdPer1k: number;
  readonly generatedTokens: number;
  /** Wall seconds covered (uptime, or the window capped at uptime). */
  readonly wallSeconds: number;
  /** Seconds of engine steps in that span. */
  readonly busySeconds: number;
}

/**
 * Totals per account (API key id), the busy and all-in totals since start, and a sliding window over
 * recent engine steps (or, when the engine reports no steps, over finished requests).
 */
export class CostLedger {
  readonly usdPerHour: number;
  readonly windowMs: number;
  private readonly accounts = new Map<string, AccountTotals>();
  private readonly steps: WindowEntry[] = [];
  private readonly requests: WindowEntry[] = [];
  private sawSteps = false;
  private readonly now: () => number;
  private readonly startMs: number;
  private busySeconds = 0;
  private generatedTokens = 0;

  constructor(opts: { usdPerHour: number; windowSeconds?: number; now?: () => number }) {
    this.usdPerHour = opts.usdPerHour;
    this.windowMs = (opts.windowSeconds ?? 60) * 1000;
    this.now = opts.now ?? Date.now;
    this.startMs = this.now();
  }

  /** One engine step: its wall time and how many tokens it generated. */
  recordStep(wallSeconds: number, generatedTokens: number): void {
    this.sawSteps = true;
    this.busySeconds += wallSeconds;
    this.generatedTokens += generatedTokens;
    this.steps.push({ atMs: this.now(), wallSeconds, generatedTokens });
    this.prune(this.steps);
  }

  /** One finished request, charged to its account. */
  recordRequest(account: string, r: { promptTokens: number; completionTokens: number; costUsd: number }): void {
    const t = this.accounts.get(account) ?? { numRequests: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };
    t.numRequests += 1;
    t.promptTokens += r.promptTokens;
    t.completionTokens += r.completionTokens;
    t.costUsd += r.costUsd;
    this.accounts.set(account, t);
    // Wall seconds this request was charged for, recovered from its cost at the same price.
    const wallSeconds = this.usdPerHour > 0 ? (r.costUsd * 3600) / this.usdPerHour : 0;
    this.requests.push({ atMs: this.now(), wallSeconds, generatedTokens: r.completionTokens });
    this.prune(this.requests);
  }

  totals(): ReadonlyMap<string, Readonly<AccountTotals>> {
    return this.accounts;
  }

  /** Seconds since the ledger (the server) started. */
  uptimeSeconds(): number {
    return Math.max(0, (this.now() - this.startMs) / 1000);
  }

  /** Both bases since start. The all-in USD is exactly price x uptime. */
  sinceStart(): CostSummary {
    return this.summary(this.uptimeSeconds(), this.busySeconds, this.generatedTokens);
  }

  /** Both bases over the sliding window (all-in: the window's wall time, capped at uptime). */
  window(): CostSummary {
    const src = this.sawSteps ? this.steps : this.requests;
    this.prune(src);
    let busy = 0;
    let tokens = 0;
    for (const e of src) {
      busy += e.wallSeconds;
      tokens += e.generatedTokens;
    }
    return this.summary(Math.min(this.windowMs / 1000, this.uptimeSeconds()), busy, tokens);
  }

  /** Busy USD per 1k generated tokens over the window (NaN when nothing was generated in it). */
  windowUsdPer1kTokens(): number {
    return this.window().busyUsdPer1k;
  }

  private summary(wallSeconds: number, busySeconds: number, generatedTokens: number): CostSummary {
    const p = this.usdPerHour;
    return {
      busyUsd: wallCostUsd(p, busySeconds),
      allInUsd: wallCostUsd(p, wallSeconds),
      busyUsdPer1k: usdPer1kTokens(p, busySeconds, generatedTokens),
      allInUsdPer1k: usdPer1kTokens(p, wallSeconds, generatedTokens),
      generatedTokens,
      wallSeconds,
      busySeconds,
    };
  }

  private prune(list: WindowEntry[]): void {
    const cutoff = this.now() - this.windowMs;
    let i = 0;
    while (i < list.length && list[i]!.atMs < cutoff) i++;
    if (i > 0) list.splice(0, i);
  }
}
