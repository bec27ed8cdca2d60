// THE cost formula (ARCHITECTURE.md "Cost"): usdPer1kTok = usdPerHour / 3600 * wallSeconds /
// (generatedTokens / 1000). Also: apportioning one step's wall time over the requests it served,
// and a ledger of totals per API key plus a sliding-window USD/1k-output-tokens. Never define a
// second cost formula anywhere else: import these.

/** USD per 1,000 generated tokens. NaN when no tokens were generated (cost per token undefined). */
export function usdPer1kTokens(usdPerHour: number, wallSeconds: number, generatedTokens: number): number {
  if (!(generatedTokens > 0)) return Number.NaN;
  return (usdPerHour / 3600) * wallSeconds / (generatedTokens / 1000);
}

/** USD that wallSeconds of the machine cost at usdPerHour. */
export function wallCostUsd(usdPerHour: number, wallSeconds: number): number {
  return (usdPerHour / 3600) * wallSeconds;
}

export interface StepShare {
  readonly requestId: string;
  /** Tokens this step generated for the request (sampled tokens). */
  readonly numGeneratedTokens: number;
  /** Tokens this step processed for the request (prefill chunk + decode); the fallback weight. */
  readonly numScheduledTokens?: number;
}

/**
 * Split one step's wall time (as USD) over the requests in it, in proportion to the tokens the
 * step generated for each. A step that generated nothing (a pure chunked-prefill step) is split by
 * scheduled tokens instead, so no wall time is ever dropped. Returns requestId -> USD.
 */
export function apportionStepCost(usdPerHour: number, stepWallSeconds: number, shares: readonly StepShare[]): Map<string, number> {
  const out = new Map<string, number>();
  const stepUsd = wallCostUsd(usdPerHour, stepWallSeconds);
  let total = 0;
  for (const s of shares) total += s.numGeneratedTokens;
  const byGenerated = total > 0;
  const weight = (s: StepShare): number => (byGenerated ? s.numGeneratedTokens : (s.numScheduledTokens ?? 0));
  if (!byGenerated) for (const s of shares) total += s.numScheduledTokens ?? 0;
  if (total === 0) {
    // Nothing to weigh by: split evenly (should not happen for a real step).
    for (const s of shares) out.set(s.requestId, (out.get(s.requestId) ?? 0) + stepUsd / Math.max(1, shares.length));
    return out;
  }
  for (const s of shares) out.set(s.requestId, (out.get(s.requestId) ?? 0) + stepUsd * weight(s) / total);
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

/**
 * Totals per account (API key id) and a sliding window over recent engine steps (or, when the
 * engine reports no steps, over finished requests) for the live USD per 1k output tokens.
 */
export class CostLedger {
  readonly usdPerHour: number;
  readonly windowMs: number;
  private readonly accounts = new Map<string, AccountTotals>();
  private readonly steps: WindowEntry[] = [];
  private readonly requests: WindowEntry[] = [];
  private sawSteps = false;
  private readonly now: () => number;

  constructor(opts: { usdPerHour: number; windowSeconds?: number; now?: () => number }) {
    this.usdPerHour = opts.usdPerHour;
    this.windowMs = (opts.windowSeconds ?? 60) * 1000;
    this.now = opts.now ?? Date.now;
  }

  /** One engine step: its wall time and how many tokens it generated. */
  recordStep(wallSeconds: number, generatedTokens: number): void {
    this.sawSteps = true;
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

  /** USD per 1k generated tokens over the window (NaN when nothing was generated in it). */
  windowUsdPer1kTokens(): number {
    const src = this.sawSteps ? this.steps : this.requests;
    this.prune(src);
    let wall = 0;
    let tokens = 0;
    for (const e of src) {
      wall += e.wallSeconds;
      tokens += e.generatedTokens;
    }
    return usdPer1kTokens(this.usdPerHour, wall, tokens);
  }

  private prune(list: WindowEntry[]): void {
    const cutoff = this.now() - this.windowMs;
    let i = 0;
    while (i < list.length && list[i]!.atMs < cutoff) i++;
    if (i > 0) list.splice(0, i);
  }
}
