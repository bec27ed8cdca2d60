// The JSON record every bench run writes (ARCHITECTURE.md "Tests and benchmarks"): one per
// (engine, model, shape, concurrency) point, from `bench engine`, `bench serve` and the peers.
// Derived numbers (USD via cost.ts, GB/s and % of peak) are computed here and nowhere else.
import { usdPer1kTokens } from '../cost.js';
import type { Distribution, Spread } from './percentiles.js';

export const BENCH_RECORD_SCHEMA = 'tokenmill.bench/1';

export type BenchKind = 'engine' | 'serve' | 'peer';

export interface ErrorCounts {
  readonly total: number;
  /** 'http_<status>' | 'timeout' | 'connection' | 'stream' -> count. */
  readonly byClass: Readonly<Record<string, number>>;
}

export interface Goodput {
  readonly sloTtftMs: number | null;
  readonly sloItlMs: number | null;
  /** Requests that finished without error and met every stated SLO. */
  readonly numGoodRequests: number;
  readonly goodRequestsPerS: number;
  /** Output tokens of the good requests per second of wall time. */
  readonly goodTokPerS: number;
}

export interface BenchRecord {
  readonly schema: typeof BENCH_RECORD_SCHEMA;
  readonly kind: BenchKind;
  /** Who produced the tokens: 'tokenmill', 'llama.cpp', 'transformers-eager-sdpa', ... */
  readonly engine: string;
  readonly engineVersion: string | null;
  readonly date: string;
  readonly commit: string;
  readonly dirty: boolean | null;
  /** 'cpu' | 'cuda' | 'remote' (bench serve measures whatever is behind the URL). */
  readonly deviceKind: string;
  /** Human name: CPU model + threads, or the GPU name. */
  readonly device: string;
  readonly numThreads: number | null;
  readonly model: string;
  readonly dtype: string;
  readonly inLen: number;
  readonly outLen: number;
  readonly concurrency: number;
  /** Poisson arrival rate (bench serve --request-rate), null for a closed loop. */
  readonly requestRate: number | null;
  readonly numRequests: number;
  readonly numOk: number;
  readonly wallS: number;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  /** Output tokens per second of wall time (median over reps when reps > 1). */
  readonly tokPerS: number;
  readonly tokPerSSpread: Spread | null;
  readonly ttftMs: Distribution;
  readonly itlMs: Distribution;
  readonly e2eMs: Distribution;
  readonly goodput: Goodput | null;
  readonly errors: ErrorCounts;
  /** Bytes one decode step reads: weights + KV of every sequence in it (estimate; see notes). */
  readonly bytesPerDecodeStep: number | null;
  readonly gbPerS: number | null;
  readonly peakGbPerS: number | null;
  readonly peakSource: string | null;
  readonly pctPeak: number | null;
  readonly usdPerHour: number;
  /** 'flag' when the user gave the price, 'assumed' when it is the device's documented default (metrics/machine-price.ts). */
  readonly usdPerHourSource?: 'flag' | 'assumed' | null;
  readonly usdPer1kTok: number | null;
  readonly usdPer1MTok: number | null;
  readonly avgPowerW: number | null;
  readonly joulesPerTok: number | null;
  /** The engine's resolved options for this point (bench engine; null where the engine is remote or a peer). */
  readonly engineConfig?: Readonly<Record<string, unknown>> | null;
  readonly fingerprint: unknown;
  readonly command: string;
  readonly notes: readonly string[];
}

/** USD per 1k and per 1M generated tokens at usdPerHour, via cost.ts (null when nothing was generated). */
export function costFields(
  usdPerHour: number,
  wallS: number,
  generatedTokens: number,
): { usdPer1kTok: number | null; usdPer1MTok: number | null } {
  const per1k = usdPer1kTokens(usdPerHour, wallS, generatedTokens);
  if (!Number.isFinite(per1k)) return { usdPer1kTok: null, usdPer1MTok: null };
  return { usdPer1kTok: per1k, usdPer1MTok: per1k * 1000 };
}

export interface DecodeTraffic {
  /** Bytes of weights read once per decode step. */
  readonly weightBytes: number;
  /** K + V bytes per cached token over all layers. */
  readonly kvBytesPerToken: number;
  /** Sequences decoding together in a step. */
  readonly batch: number;
  /** Average KV length a decode step attends over (inLen + outLen / 2 for a whole run). */
  readonly avgContextLen: number;
}

export function bytesPerDecodeStep(t: DecodeTraffic): number {
  return t.weightBytes + t.batch * t.avgContextLen * t.kvBytesPerToken;
}

/**
 * Achieved bandwidth from decode steps per second and bytes per step, and its share of a peak.
 * decodeStepsPerS = decode tok/s / batch when every step decodes `batch` sequences.
 */
export function bandwidthFields(
  bytesPerStep: number | null,
  decodeStepsPerS: number | null,
  peakGbPerS: number | null,
): { gbPerS: number | null; pctPeak: number | null } {
  if (bytesPerStep === null || decodeStepsPerS === null || !(decodeStepsPerS > 0)) return { gbPerS: null, pctPeak: null };
  const gbPerS = (bytesPerStep * decodeStepsPerS) / 1e9;
  return { gbPerS, pctPeak: peakGbPerS !== null && peakGbPerS > 0 ? (100 * gbPerS) / peakGbPerS : null };
}

/** Energy per generated token from the average board power over the run (null without power). */
export function joulesPerToken(avgPowerW: number | null, wallS: number, generatedTokens: number): number | null {
  if (avgPowerW === null || !(generatedTokens > 0)) return null;
  return (avgPowerW * wallS) / generatedTokens;
}

/** File name for a run's records: <kind>-<engine>-<date>-<sha8>.json. */
export function recordFileName(kind: string, label: string, date: Date, commit: string): string {
  const stamp = date.toISOString().slice(0, 19).replace(/[:T]/g, '-');
  const safe = label.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${kind}-${safe}-${stamp}-${commit.slice(0, 8)}.json`;
}

/** A results file: the run's settings plus its records. */
export interface BenchRun {
  readonly schema: typeof BENCH_RECORD_SCHEMA;
  readonly date: string;
  readonly command: string;
  /** The machine was shared with other work (load average at start and end). */
  readonly loadAvg: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly records: readonly BenchRecord[];
}

/** Accepts a BenchRun file, a bare record array, or one record; returns the records. */
export function recordsOf(json: unknown): BenchRecord[] {
  const isRecord = (x: unknown): x is BenchRecord =>
    typeof x === 'object' &&
    x !== null &&
    (x as { schema?: unknown }).schema === BENCH_RECORD_SCHEMA &&
    typeof (x as { engine?: unknown }).engine === 'string';
  if (Array.isArray(json)) return json.filter(isRecord);
  if (isRecord(json)) return [json];
  if (typeof json === 'object' && json !== null && Array.isArray((json as { records?: unknown }).records)) {
    return (json as { records: unknown[] }).records.filter(isRecord);
  }
  return [];
}
