// `tokenmill bench engine`: offline, in-process measurement through AsyncEngine on the chosen
// backend. Seeded random-token prompts, greedy with ignore_eos so every request has exactly inLen
// prompt and outLen output tokens; a closed loop keeps `concurrency` requests in flight. Returns one
// BenchRecord per (shape, concurrency); cost, GB/s and power go through metrics/bench.
import { cpus } from 'node:os';
import { AsyncEngine } from '../engine/async-engine.js';
import type { EngineOptions } from '../engine/engine-config.js';
import { ENGINE_DEFAULTS, numBlocksFor } from '../engine/engine-defaults.js';
import { samplingParams } from '../engine/sampling-params.js';
import type { EngineStepEvent } from '../metrics/engine-observer.js';
import {
  BENCH_RECORD_SCHEMA,
  bandwidthFields,
  bytesPerDecodeStep,
  costFields,
  joulesPerToken,
  type BenchRecord,
} from '../metrics/bench/bench-record.js';
import { PowerSampler } from '../metrics/bench/device-probes.js';
import { distribution, spread } from '../metrics/bench/percentiles.js';
import { syntheticTokenPrompts } from '../metrics/loadgen/prompt-source.js';
import type { CausalLM } from '../model/types.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';

export interface BenchShape {
  readonly inLen: number;
  readonly outLen: number;
}

export interface EngineBenchContext {
  readonly model: CausalLM;
  readonly modelName: string;
  readonly dtype: string;
  readonly deviceKind: 'cpu' | 'cuda' | 'reference';
  readonly device: string;
  readonly numThreads: number | null;
  readonly weightBytes: number;
  readonly peakGbPerS: number | null;
  readonly peakSource: string | null;
  readonly commit: string;
  readonly dirty: boolean | null;
  readonly fingerprint: unknown;
  readonly command: string;
}

export interface EngineBenchOptions {
  readonly shapes: readonly BenchShape[];
  readonly concurrency: readonly number[];
  /** Requests per point (default max(4, 2 x concurrency)). */
  readonly numRequests?: number;
  readonly reps: number;
  readonly seed: number;
  readonly usdPerHour: number;
  /** Where usdPerHour came from: the --usd-per-hour flag, or the device's assumed price (with its basis, noted in the record). */
  readonly usdPerHourSource?: { readonly source: 'flag' | 'assumed'; readonly basis: string };
  readonly measurePower: boolean;
  /** Engine options from the environment (cli/env.ts), applied over benchEngineOptions and recorded. */
  readonly engine?: Pick<EngineOptions, 'decodeGraphs' | 'deviceGrammarMasks'>;
  /** Called after every finished request (progress bars). */
  readonly onRequestDone?: () => void;
}

interface RepResult {
  wallS: number;
  generated: number;
  prompt: number;
  ttft: number[];
  itl: number[];
  e2e: number[];
  decodeWallS: number;
  decodeTokens: number;
  numDecodeSteps: number;
  powerW: number | null;
  /** The engine's resolved options (ResolvedEngineConfig + KV dtype). */
  engineConfig: Record<string, unknown>;
}

/**
 * serve's engine (ENGINE_DEFAULTS) with three overrides a closed-loop benchmark needs: a KV pool that
 * holds every in-flight request (so no point measures preemption), maxModelLen = the shape, and
 * maxNumSeqs raised to the concurrency when it exceeds the default. Each record carries the result.
 */
export function benchEngineOptions(model: CausalLM, shape: BenchShape, conc: number): EngineOptions {
  const numTokens = shape.inLen + shape.outLen;
  return {
    model,
    numBlocks: numBlocksFor(conc, numTokens + ENGINE_DEFAULTS.blockSize) + 4,
    maxModelLen: numTokens,
    ...(conc > ENGINE_DEFAULTS.maxNumSeqs ? { maxNumSeqs: conc } : {}),
  };
}

export function defaultNumRequests(concurrency: number): number {
  return Math.max(4, 2 * concurrency);
}

/** The points this model can run (inLen + outLen within its context), and the rest with why. */
export function feasibleShapes(shapes: readonly BenchShape[], maxLen: number): { run: BenchShape[]; skipped: string[] } {
  const run: BenchShape[] = [];
  const skipped: string[] = [];
  for (const s of shapes) {
    if (s.inLen + s.outLen <= maxLen) run.push(s);
    else skipped.push(`${s.inLen}/${s.outLen}: exceeds the model's ${maxLen}-token context`);
  }
  return { run, skipped };
}

async function oneRep(
  ctx: EngineBenchContext,
  shape: BenchShape,
  conc: number,
  numRequests: number,
  seed: number,
  o: EngineBenchOptions,
  warmup: boolean,
): Promise<RepResult> {
  const steps: EngineStepEvent[] = [];
  const engine = new AsyncEngine({
    modelId: ctx.modelName,
    ...benchEngineOptions(ctx.model, shape, conc),
    ...o.engine,
    usdPerHour: o.usdPerHour,
    maxWaitingRequests: numRequests + 1,
    observer: { onStep: (e) => steps.push(e) },
  });
  const engineConfig = { ...engine.engine.config, kvCacheDType: ctx.model.kvCacheDType };
  try {
    const vocab = ctx.model.config.vocabSize;
    if (warmup)
      await drainOne(
        engine,
        'warmup',
        syntheticTokenPrompts(1, Math.min(16, shape.inLen), vocab, seed ^ 0x5bd1)[0]!,
        Math.min(4, shape.outLen),
      );
    steps.length = 0;
    const prompts = syntheticTokenPrompts(numRequests, shape.inLen, vocab, seed);
    const ttft: number[] = [];
    const itl: number[] = [];
    const e2e: number[] = [];
    let generated = 0;
    let next = 0;
    const power = o.measurePower ? new PowerSampler().start() : null;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= numRequests) return;
        const r = await drainOne(engine, `r${i}`, prompts[i]!, shape.outLen);
        if (r.ttftMs !== null) ttft.push(r.ttftMs);
        itl.push(...r.itlMs);
        e2e.push(r.e2eMs);
        generated += r.numTokens;
        o.onRequestDone?.();
      }
    };
    await Promise.all(Array.from({ length: Math.min(conc, numRequests) }, worker));
    const wallS = (performance.now() - t0) / 1000;
    const powerW = power?.stop() ?? null;
    let decodeWallS = 0;
    let decodeTokens = 0;
    let numDecodeSteps = 0;
    for (const s of steps) {
      if ((s.numPrefillTokens ?? 0) === 0 && s.numGeneratedTokens > 0) {
        decodeWallS += s.wallSeconds;
        decodeTokens += s.numGeneratedTokens;
        numDecodeSteps++;
      }
    }
    return {
      wallS,
      generated,
      prompt: numRequests * shape.inLen,
      ttft,
      itl,
      e2e,
      decodeWallS,
      decodeTokens,
      numDecodeSteps,
      powerW,
      engineConfig,
    };
  } finally {
    await engine.shutdown();
  }
}

/** One request to completion: TTFT, per-token gaps (a step's gap split over its tokens), e2e. */
async function drainOne(
  engine: AsyncEngine,
  id: string,
  prompt: readonly number[],
  outLen: number,
): Promise<{ ttftMs: number | null; itlMs: number[]; e2eMs: number; numTokens: number }> {
  const params = samplingParams({ temperature: 0, maxTokens: outLen, ignoreEos: true });
  const t0 = performance.now();
  let last: number | null = null;
  let ttftMs: number | null = null;
  const itlMs: number[] = [];
  let numTokens = 0;
  for await (const out of engine.generate({ requestId: id, promptTokenIds: prompt, params })) {
    const k = out.newTokenIds.length;
    if (k === 0) continue;
    const now = performance.now();
    if (last === null) {
      ttftMs = now - t0;
      for (let j = 1; j < k; j++) itlMs.push(0);
    } else for (let j = 0; j < k; j++) itlMs.push((now - last) / k);
    last = now;
    numTokens += k;
  }
  return { ttftMs, itlMs, e2eMs: performance.now() - t0, numTokens };
}

export async function runEngineBench(ctx: EngineBenchContext, o: EngineBenchOptions): Promise<BenchRecord[]> {
  const { run, skipped } = feasibleShapes(o.shapes, ctx.model.config.maxPositionEmbeddings);
  for (const s of skipped) log.warn(`bench engine: skipping ${s}`);
  if (run.length === 0)
    throw new TokenmillError(
      'invalid_argument',
      `bench engine: no shape fits the model's ${ctx.model.config.maxPositionEmbeddings}-token context (use --shapes or --in/--out)`,
      { param: '--shapes' },
    );
  const records: BenchRecord[] = [];
  let first = true;
  for (const shape of run) {
    for (const conc of o.concurrency) {
      const n = o.numRequests ?? defaultNumRequests(conc);
      const reps: RepResult[] = [];
      for (let r = 0; r < o.reps; r++) {
        reps.push(await oneRep(ctx, shape, conc, n, o.seed + r, o, first || r === 0));
        first = false;
      }
      records.push(recordOf(ctx, shape, conc, n, reps, o));
    }
  }
  return records;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
}

function recordOf(
  ctx: EngineBenchContext,
  shape: BenchShape,
  conc: number,
  n: number,
  reps: RepResult[],
  o: EngineBenchOptions,
): BenchRecord {
  const tokPerSRuns = reps.map((r) => r.generated / r.wallS);
  // The median rep stands for the point (wall, tokens, cost); latency percentiles pool every rep.
  const mid = reps[tokPerSRuns.indexOf(median(tokPerSRuns))] ?? reps[0]!;
  // Sequences per decode step, averaged over the run's pure-decode steps (the tail runs below `conc`).
  const avgBatch = mid.numDecodeSteps > 0 ? mid.decodeTokens / mid.numDecodeSteps : conc;
  const bytes = bytesPerDecodeStep({
    weightBytes: ctx.weightBytes,
    kvBytesPerToken: ctx.model.kvBytesPerToken(),
    batch: avgBatch,
    avgContextLen: shape.inLen + shape.outLen / 2,
  });
  const decodeStepsPerS = mid.decodeWallS > 0 ? mid.numDecodeSteps / mid.decodeWallS : null;
  const bw = bandwidthFields(bytes, decodeStepsPerS, ctx.peakGbPerS);
  const notes = [
    `${o.reps} rep(s) of ${n} requests; tok/s is the median rep, latency percentiles pool all reps`,
    `gbPerS: (weights + avg batch ${avgBatch.toFixed(2)} x (inLen + outLen/2) x KV bytes/token) per decode step x decode steps/s ` +
      '(pure-decode steps only, their own wall time)',
  ];
  if (o.usdPerHourSource?.source === 'assumed')
    notes.push(`usdPerHour is ASSUMED, not a quote: ${o.usdPerHourSource.basis}; pass --usd-per-hour for yours`);
  if (ctx.deviceKind === 'cpu') notes.push(`CPU with ${cpus().length} logical cores; load average is in the run file`);
  return {
    schema: BENCH_RECORD_SCHEMA,
    kind: 'engine',
    engine: 'tokenmill',
    engineVersion: null,
    date: new Date().toISOString(),
    commit: ctx.commit,
    dirty: ctx.dirty,
    deviceKind: ctx.deviceKind,
    device: ctx.device,
    numThreads: ctx.numThreads,
    model: ctx.modelName,
    dtype: ctx.dtype,
    inLen: shape.inLen,
    outLen: shape.outLen,
    concurrency: conc,
    requestRate: null,
    numRequests: n,
    numOk: n,
    wallS: mid.wallS,
    promptTokens: mid.prompt,
    generatedTokens: mid.generated,
    tokPerS: mid.generated / mid.wallS,
    tokPerSSpread: spread(tokPerSRuns),
    ttftMs: distribution(reps.flatMap((r) => r.ttft)),
    itlMs: distribution(reps.flatMap((r) => r.itl)),
    e2eMs: distribution(reps.flatMap((r) => r.e2e)),
    goodput: null,
    errors: { total: 0, byClass: {} },
    bytesPerDecodeStep: bytes,
    gbPerS: bw.gbPerS,
    peakGbPerS: ctx.peakGbPerS,
    peakSource: ctx.peakSource,
    pctPeak: bw.pctPeak,
    usdPerHour: o.usdPerHour,
    usdPerHourSource: o.usdPerHourSource?.source ?? null,
    ...costFields(o.usdPerHour, mid.wallS, mid.generated),
    avgPowerW: mid.powerW,
    joulesPerTok: joulesPerToken(mid.powerW, mid.wallS, mid.generated),
    engineConfig: mid.engineConfig,
    fingerprint: ctx.fingerprint,
    command: ctx.command,
    notes,
  };
}
