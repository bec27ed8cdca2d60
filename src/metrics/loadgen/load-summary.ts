// Summary of one load run: latency percentiles over the successful requests, output tok/s, errors
// by class, and goodput under a stated SLO (DistServe-style: a request counts when it succeeded,
// its TTFT <= sloTtftMs and its mean inter-token latency (TPOT) <= sloItlMs; unset SLOs always pass).
import type { BenchRecord, ErrorCounts, Goodput } from '../bench/bench-record.js';
import { distribution, type Distribution } from '../bench/percentiles.js';
import type { LoadRun, RequestResult } from './load-generator.js';

export interface Slo {
  readonly ttftMs?: number | null;
  readonly itlMs?: number | null;
}

/** The BenchRecord fields one load run fills (meanings there), plus request rate and TPOT. */
export interface LoadSummary
  extends Pick<
    BenchRecord,
    'numRequests' | 'numOk' | 'wallS' | 'promptTokens' | 'generatedTokens' | 'tokPerS' | 'ttftMs' | 'itlMs' | 'e2eMs' | 'errors' | 'goodput'
  > {
  readonly requestsPerS: number;
  readonly tpotMs: Distribution;
}

/** Mean inter-token latency of one request: (e2e - ttft) / (tokens - 1); null with < 2 tokens. */
export function tpotMs(r: RequestResult): number | null {
  if (r.ttftMs === null || r.outputTokens < 2) return null;
  return (r.e2eMs - r.ttftMs) / (r.outputTokens - 1);
}

export function meetsSlo(r: RequestResult, slo: Slo): boolean {
  if (!r.ok) return false;
  if (slo.ttftMs != null && (r.ttftMs === null || r.ttftMs > slo.ttftMs)) return false;
  if (slo.itlMs != null) {
    const t = tpotMs(r);
    if (t !== null && t > slo.itlMs) return false;
  }
  return true;
}

export function errorCounts(results: readonly RequestResult[]): ErrorCounts {
  const byClass: Record<string, number> = {};
  let total = 0;
  for (const r of results) {
    if (r.ok || r.errorClass === null) continue;
    byClass[r.errorClass] = (byClass[r.errorClass] ?? 0) + 1;
    total++;
  }
  return { total, byClass };
}

export function summarizeLoad(run: LoadRun, slo: Slo = {}): LoadSummary {
  const ok = run.results.filter((r) => r.ok);
  const wallS = run.wallS;
  let generatedTokens = 0;
  let promptTokens = 0;
  for (const r of ok) {
    generatedTokens += r.outputTokens;
    promptTokens += r.promptTokens ?? 0;
  }
  const perS = (x: number): number => (wallS > 0 ? x / wallS : 0);
  let goodput: Goodput | null = null;
  if (slo.ttftMs != null || slo.itlMs != null) {
    const good = ok.filter((r) => meetsSlo(r, slo));
    let goodTokens = 0;
    for (const r of good) goodTokens += r.outputTokens;
    goodput = {
      sloTtftMs: slo.ttftMs ?? null,
      sloItlMs: slo.itlMs ?? null,
      numGoodRequests: good.length,
      goodRequestsPerS: perS(good.length),
      goodTokPerS: perS(goodTokens),
    };
  }
  return {
    numRequests: run.results.length,
    numOk: ok.length,
    wallS,
    promptTokens,
    generatedTokens,
    tokPerS: perS(generatedTokens),
    requestsPerS: perS(ok.length),
    ttftMs: distribution(ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs]))),
    itlMs: distribution(ok.flatMap((r) => r.itlMs)),
    tpotMs: distribution(
      ok.flatMap((r) => {
        const t = tpotMs(r);
        return t === null ? [] : [t];
      }),
    ),
    e2eMs: distribution(ok.map((r) => r.e2eMs)),
    errors: errorCounts(run.results),
    goodput,
  };
}
