// The soak: C closed-loop clients for W waves of T ms against a running server. After each wave
// the clients stop, the engine drains, and /metrics is read: KV blocks free vs total (a leak shows
// as free < total with nothing running), resident memory and heap. Latency p50/p99 per window.
// The overload mode offers a multiple of the measured capacity (open loop, Poisson arrivals) and
// counts what the server did with the excess: shed (503 + Retry-After) or made clients time out.
import { Rng } from '../../test/reliability/mutation/mutator.js';
import { poissonSchedule } from '../../src/metrics/loadgen/load-generator.js';
import { readMetrics, waitIdle } from './serve-process.js';
import { soakRequest, type RequestOutcome, type RequestSpec, type TruncationDetail } from './soak-clients.js';

export interface SoakOptions {
  readonly url: string;
  readonly model: string;
  readonly headers?: Record<string, string>;
  readonly clients: number;
  readonly waves: number;
  readonly waveMs: number;
  readonly seed: number;
  readonly maxTokens?: number;
  readonly disconnectShare?: number;
  /** Before-headers disconnects abort after 0 .. n-1 ms (default 3); a stress run raises it so more headers win the race. */
  readonly beforeHeadersMs?: number;
  /** Client-side give-up time per request (default 60 s, what OpenAI clients use). */
  readonly timeoutMs?: number;
  /** Width of the latency-over-time windows (default 30 s). */
  readonly windowMs?: number;
  readonly onWave?: (w: WaveReport) => void;
}

export interface LatencyWindow {
  readonly startS: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface WaveReport {
  readonly wave: number;
  readonly requests: number;
  readonly byStatus: Record<string, number>;
  /** 503 or 429 carrying Retry-After: load shed, not a failure of the server. */
  readonly shed: number;
  /** Every other 5xx. */
  readonly errors5xx: number;
  readonly timeouts: number;
  /** Streams that ended without [DONE] although the client kept reading. */
  readonly truncated: number;
  /** What each truncated response looked like (the first few), so a rare one explains itself. */
  readonly truncations: readonly TruncationDetail[];
  /** 200 streams carrying an error event (the server failed after the headers), and the first few of those errors. */
  readonly streamErrors: number;
  readonly streamErrorSamples: readonly string[];
  readonly disconnects: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ttftP99Ms: number;
  readonly freeBlocks: number;
  readonly totalBlocks: number;
  readonly leakedBlocks: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export interface SoakReport {
  readonly waves: readonly WaveReport[];
  readonly latencyOverTime: readonly LatencyWindow[];
  readonly requests: number;
  readonly shed: number;
  readonly errors5xx: number;
  readonly timeouts: number;
  readonly truncated: number;
  readonly truncations: readonly TruncationDetail[];
  readonly streamErrors: number;
  readonly streamErrorSamples: readonly string[];
  readonly maxLeakedBlocks: number;
  /** RSS after the first wave (warm-up) and after the last. */
  readonly rssWarmBytes: number;
  readonly rssLastBytes: number;
  readonly rssGrowthPct: number;
  readonly finishReasons: Record<string, number>;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function count<T extends string>(xs: readonly T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** Examples kept per report: enough to see a pattern, few enough to print. */
const MAX_SAMPLES = 5;

const isShed = (o: RequestOutcome): boolean => (o.status === 503 || o.status === 429) && o.retryAfter;

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const headers = o.headers ?? {};
  const t0 = performance.now();
  const spec: RequestSpec = {
    url: o.url,
    model: o.model,
    headers,
    maxTokens: o.maxTokens ?? 64,
    disconnectShare: o.disconnectShare ?? 0.1,
    timeoutMs: o.timeoutMs ?? 60_000,
    t0,
    ...(o.beforeHeadersMs !== undefined ? { beforeHeadersMs: o.beforeHeadersMs } : {}),
  };
  const all: RequestOutcome[] = [];
  const waves: WaveReport[] = [];
  for (let w = 0; w < o.waves; w++) {
    const outcomes: RequestOutcome[] = [];
    const until = performance.now() + o.waveMs;
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        const rng = new Rng((o.seed * 7919 + w * 104_729 + c) >>> 0);
        while (performance.now() < until) outcomes.push(await soakRequest(spec, rng));
      }),
    );
    const m = await waitIdle(o.url, headers);
    all.push(...outcomes);
    const done = outcomes.filter((x) => x.status === 200 && x.disconnect === null && !x.timedOut);
    const free = m.get('tokenmill_kv_cache_free_blocks') ?? Number.NaN;
    const total = m.get('tokenmill_kv_cache_total_blocks') ?? Number.NaN;
    const report: WaveReport = {
      wave: w,
      requests: outcomes.length,
      byStatus: count(outcomes.map((x) => String(x.status))),
      shed: outcomes.filter(isShed).length,
      errors5xx: outcomes.filter((x) => x.status >= 500 && !isShed(x)).length,
      timeouts: outcomes.filter((x) => x.timedOut).length,
      truncated: outcomes.filter((x) => x.truncated).length,
      truncations: outcomes.flatMap((x) => (x.truncation === undefined ? [] : [x.truncation])).slice(0, MAX_SAMPLES),
      streamErrors: outcomes.filter((x) => x.streamError !== undefined).length,
      streamErrorSamples: outcomes.flatMap((x) => (x.streamError === undefined ? [] : [x.streamError])).slice(0, MAX_SAMPLES),
      disconnects: count(outcomes.flatMap((x) => (x.disconnect === null ? [] : [x.disconnect]))),
      p50Ms: percentile(
        done.map((x) => x.latencyMs),
        50,
      ),
      p99Ms: percentile(
        done.map((x) => x.latencyMs),
        99,
      ),
      ttftP99Ms: percentile(
        done.flatMap((x) => (x.ttftMs === null ? [] : [x.ttftMs])),
        99,
      ),
      freeBlocks: free,
      totalBlocks: total,
      leakedBlocks: total - free,
      rssBytes: m.get('process_resident_memory_bytes') ?? Number.NaN,
      heapUsedBytes: m.get('nodejs_heap_size_used_bytes') ?? Number.NaN,
    };
    waves.push(report);
    o.onWave?.(report);
  }
  const windowMs = o.windowMs ?? 30_000;
  const ok = all.filter((x) => x.status === 200 && x.disconnect === null && !x.timedOut);
  const latencyOverTime: LatencyWindow[] = [];
  const end = Math.max(0, ...ok.map((x) => x.startMs));
  for (let s = 0; s <= end; s += windowMs) {
    const lat = ok.filter((x) => x.startMs >= s && x.startMs < s + windowMs).map((x) => x.latencyMs);
    if (lat.length > 0)
      latencyOverTime.push({ startS: s / 1000, requests: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) });
  }
  const rssWarm = waves[0]?.rssBytes ?? Number.NaN;
  const rssLast = waves.at(-1)?.rssBytes ?? Number.NaN;
  return {
    waves,
    latencyOverTime,
    requests: all.length,
    shed: waves.reduce((s, w) => s + w.shed, 0),
    errors5xx: waves.reduce((s, w) => s + w.errors5xx, 0),
    timeouts: waves.reduce((s, w) => s + w.timeouts, 0),
    truncated: waves.reduce((s, w) => s + w.truncated, 0),
    truncations: waves.flatMap((w) => w.truncations).slice(0, MAX_SAMPLES),
    streamErrors: waves.reduce((s, w) => s + w.streamErrors, 0),
    streamErrorSamples: waves.flatMap((w) => w.streamErrorSamples).slice(0, MAX_SAMPLES),
    maxLeakedBlocks: Math.max(...waves.map((w) => w.leakedBlocks)),
    rssWarmBytes: rssWarm,
    rssLastBytes: rssLast,
    rssGrowthPct: ((rssLast - rssWarm) / rssWarm) * 100,
    finishReasons: count(ok.flatMap((x) => x.finishReasons)),
  };
}

export interface OverloadOptions {
  readonly url: string;
  readonly model: string;
  readonly headers?: Record<string, string>;
  /** Closed-loop clients for the capacity measurement. */
  readonly calibrateClients: number;
  readonly calibrateMs: number;
  /** Offered load as a multiple of the measured capacity (default 2). */
  readonly multiple?: number;
  readonly durationMs: number;
  readonly seed: number;
  readonly maxTokens?: number;
  readonly timeoutMs?: number;
}

export interface OverloadReport {
  readonly capacityRps: number;
  readonly offeredRps: number;
  readonly requests: number;
  readonly ok: number;
  readonly shed: number;
  /** 503/429 without Retry-After. */
  readonly shedWithoutRetryAfter: number;
  readonly timeouts: number;
  readonly otherErrors: number;
  readonly okP99Ms: number;
  readonly shedP99Ms: number;
  readonly byStatus: Record<string, number>;
}

/** Measure what the server completes per second, then offer `multiple` times that for durationMs. */
export async function runOverload(o: OverloadOptions): Promise<OverloadReport> {
  const headers = o.headers ?? {};
  const t0 = performance.now();
  const spec: RequestSpec = {
    url: o.url,
    model: o.model,
    headers,
    maxTokens: o.maxTokens ?? 64,
    disconnectShare: 0,
    timeoutMs: o.timeoutMs ?? 60_000,
    t0,
    kind: 'stream-chat',
  };
  let completed = 0;
  const until = performance.now() + o.calibrateMs;
  await Promise.all(
    Array.from({ length: o.calibrateClients }, async (_, c) => {
      const rng = new Rng((o.seed * 31 + c) >>> 0);
      while (performance.now() < until) if ((await soakRequest(spec, rng)).status === 200) completed++;
    }),
  );
  const capacityRps = completed / (o.calibrateMs / 1000);
  await waitIdle(o.url, headers);
  const offeredRps = Math.max(0.5, capacityRps * (o.multiple ?? 2));
  const n = Math.max(1, Math.round((offeredRps * o.durationMs) / 1000));
  const starts = poissonSchedule(n, offeredRps, o.seed);
  const rng = new Rng(o.seed ^ 0x5eed);
  const begin = performance.now();
  const outcomes = await Promise.all(
    starts.map(async (atMs, i) => {
      const wait = begin + atMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      return soakRequest(spec, new Rng(((o.seed * 131 + i) >>> 0) ^ rng.int(1 << 30)));
    }),
  );
  await waitIdle(o.url, headers);
  await readMetrics(o.url, headers);
  const ok = outcomes.filter((x) => x.status === 200 && !x.timedOut);
  const shed = outcomes.filter(isShed);
  return {
    capacityRps,
    offeredRps,
    requests: outcomes.length,
    ok: ok.length,
    shed: shed.length,
    shedWithoutRetryAfter: outcomes.filter((x) => (x.status === 503 || x.status === 429) && !x.retryAfter).length,
    timeouts: outcomes.filter((x) => x.timedOut).length,
    otherErrors: outcomes.filter((x) => !x.timedOut && x.status !== 200 && !isShed(x)).length,
    okP99Ms: percentile(
      ok.map((x) => x.latencyMs),
      99,
    ),
    shedP99Ms: percentile(
      shed.map((x) => x.latencyMs),
      99,
    ),
    byStatus: count(outcomes.map((x) => (x.timedOut ? 'timeout' : String(x.status)))),
  };
}
