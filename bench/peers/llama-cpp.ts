// Peer: llama.cpp through node-llama-cpp's prebuilt CPU binary (no build, no download), on a GGUF of
// the same weights tokenmill runs (`tokenmill convert to-gguf`). Same shapes, seeded prompts and
// closed loop as `bench engine`; one BenchRecord per point. node-llama-cpp is optional: it is loaded
// with a dynamic import (or from TOKENMILL_NODE_LLAMA_CPP=<package dir>), and null means absent.
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH_RECORD_SCHEMA, bandwidthFields, costFields, type BenchRecord } from '../../src/metrics/bench/bench-record.js';
import { distribution, spread } from '../../src/metrics/bench/percentiles.js';
import { syntheticTokenPrompts } from '../../src/metrics/loadgen/prompt-source.js';

// The slice of node-llama-cpp's API used here (v3).
interface NlcSequence {
  evaluate(tokens: number[], o?: { temperature?: number }): AsyncGenerator<number, void, unknown>;
  clearHistory(): Promise<void>;
  dispose(): void;
}
interface NlcContext {
  readonly contextSize: number;
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number }): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
}

export interface LoadedNlc {
  readonly mod: NlcModule;
  readonly version: string | null;
  readonly from: string;
}

/** node-llama-cpp, or null (with why) when it is not installed. */
export async function loadNodeLlamaCpp(): Promise<{ nlc: LoadedNlc | null; reason: string }> {
  // The peer lives in its own package (bench/peers/package.json, `npm run peers:install`).
  const local = fileURLToPath(new URL('./node_modules/node-llama-cpp', import.meta.url));
  const dir = process.env.TOKENMILL_NODE_LLAMA_CPP || (existsSync(local) ? local : undefined);
  const pkgDir = dir !== undefined && dir.length > 0 ? resolve(dir) : resolve('node_modules', 'node-llama-cpp');
  const version = (() => {
    try {
      return (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
    } catch {
      return null;
    }
  })();
  try {
    const spec = dir !== undefined && dir.length > 0 ? pathToFileURL(join(pkgDir, 'dist', 'index.js')).href : 'node-llama-cpp';
    const mod = (await import(spec)) as NlcModule;
    return { nlc: { mod, version, from: existsSync(pkgDir) ? pkgDir : spec }, reason: 'loaded' };
  } catch (e) {
    return { nlc: null, reason: `node-llama-cpp is not installed (${(e as Error).message.split('\n')[0]})` };
  }
}

export interface LlamaCppPeerOptions {
  readonly ggufPath: string;
  readonly modelName: string;
  readonly dtype: string;
  readonly vocabSize: number;
  readonly threads: number;
  readonly shapes: readonly { inLen: number; outLen: number }[];
  readonly concurrency: readonly number[];
  readonly numRequests: (conc: number) => number;
  readonly reps: number;
  readonly seed: number;
  readonly usdPerHour: number;
  /** Weight + KV bytes per decode step at a batch, for GB/s (same estimate as bench engine). */
  readonly bytesPerStep?: (batch: number, avgContextLen: number) => number;
  readonly peakGbPerS: number | null;
  readonly peakSource: string | null;
  readonly commit: string;
  readonly dirty: boolean | null;
  readonly fingerprint: unknown;
  readonly command: string;
  readonly onRequestDone?: () => void;
}

interface Rep {
  wallS: number;
  generated: number;
  ttft: number[];
  itl: number[];
  e2e: number[];
}

async function oneRequest(
  seq: NlcSequence,
  prompt: number[],
  outLen: number,
): Promise<{ ttft: number; itl: number[]; e2e: number; n: number }> {
  await seq.clearHistory();
  const t0 = performance.now();
  let last = t0;
  let ttft = 0;
  const itl: number[] = [];
  let n = 0;
  // Greedy; the generator keeps going past EOS (ignore_eos), we stop at outLen.
  for await (const _tok of seq.evaluate(prompt, { temperature: 0 })) {
    const now = performance.now();
    if (n === 0) ttft = now - t0;
    else itl.push(now - last);
    last = now;
    if (++n >= outLen) break;
  }
  return { ttft, itl, e2e: performance.now() - t0, n };
}

export async function runLlamaCppPeer(nlc: LoadedNlc, o: LlamaCppPeerOptions): Promise<BenchRecord[]> {
  const llama = await nlc.mod.getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    progressLogs: false,
    logLevel: 'error',
    maxThreads: o.threads,
  });
  const model = await llama.loadModel({ modelPath: o.ggufPath });
  const records: BenchRecord[] = [];
  try {
    for (const shape of o.shapes) {
      for (const conc of o.concurrency) {
        const n = o.numRequests(conc);
        const ctx = await model.createContext({
          contextSize: shape.inLen + shape.outLen + 16,
          batchSize: Math.max(512, shape.inLen),
          threads: o.threads,
          sequences: conc,
        });
        const seqs = Array.from({ length: conc }, () => ctx.getSequence());
        const reps: Rep[] = [];
        try {
          // Warm-up: one short request on the first sequence.
          await oneRequest(seqs[0]!, syntheticTokenPrompts(1, Math.min(16, shape.inLen), o.vocabSize, o.seed ^ 0x5bd1)[0]!, 4);
          for (let r = 0; r < o.reps; r++) {
            const prompts = syntheticTokenPrompts(n, shape.inLen, o.vocabSize, o.seed + r);
            const rep: Rep = { wallS: 0, generated: 0, ttft: [], itl: [], e2e: [] };
            let next = 0;
            const t0 = performance.now();
            await Promise.all(
              seqs.map(async (seq) => {
                for (;;) {
                  const i = next++;
                  if (i >= n) return;
                  const q = await oneRequest(seq, prompts[i]!, shape.outLen);
                  rep.ttft.push(q.ttft);
                  rep.itl.push(...q.itl);
                  rep.e2e.push(q.e2e);
                  rep.generated += q.n;
                  o.onRequestDone?.();
                }
              }),
            );
            rep.wallS = (performance.now() - t0) / 1000;
            reps.push(rep);
          }
        } finally {
          for (const s of seqs) s.dispose();
          await ctx.dispose();
        }
        records.push(recordOf(nlc, o, shape, conc, n, reps));
      }
    }
  } finally {
    await model.dispose();
    await llama.dispose();
  }
  return records;
}

function recordOf(
  nlc: LoadedNlc,
  o: LlamaCppPeerOptions,
  shape: { inLen: number; outLen: number },
  conc: number,
  n: number,
  reps: Rep[],
): BenchRecord {
  const runs = reps.map((r) => r.generated / r.wallS);
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = reps[runs.indexOf(sorted[Math.floor((sorted.length - 1) / 2)]!)]!;
  const itl = distribution(reps.flatMap((r) => r.itl));
  // Decode steps per second from the median ITL (one token per sequence per step).
  const bytes = o.bytesPerStep?.(conc, shape.inLen + shape.outLen / 2) ?? null;
  const bw = bandwidthFields(bytes, itl.p50 !== null && itl.p50 > 0 ? 1000 / itl.p50 : null, o.peakGbPerS);
  return {
    schema: BENCH_RECORD_SCHEMA,
    kind: 'peer',
    engine: 'llama.cpp',
    engineVersion: nlc.version !== null ? `node-llama-cpp ${nlc.version}` : null,
    date: new Date().toISOString(),
    commit: o.commit,
    dirty: o.dirty,
    deviceKind: 'cpu',
    device: `${cpus()[0]?.model ?? 'CPU'} (${o.threads} threads, prebuilt llama.cpp CPU binary)`,
    numThreads: o.threads,
    model: o.modelName,
    dtype: o.dtype,
    inLen: shape.inLen,
    outLen: shape.outLen,
    concurrency: conc,
    requestRate: null,
    numRequests: n,
    numOk: n,
    wallS: mid.wallS,
    promptTokens: n * shape.inLen,
    generatedTokens: mid.generated,
    tokPerS: mid.generated / mid.wallS,
    tokPerSSpread: spread(runs),
    ttftMs: distribution(reps.flatMap((r) => r.ttft)),
    itlMs: itl,
    e2eMs: distribution(reps.flatMap((r) => r.e2e)),
    goodput: null,
    errors: { total: 0, byClass: {} },
    bytesPerDecodeStep: bytes,
    gbPerS: bw.gbPerS,
    peakGbPerS: o.peakGbPerS,
    peakSource: o.peakSource,
    pctPeak: bw.pctPeak,
    usdPerHour: o.usdPerHour,
    ...costFields(o.usdPerHour, mid.wallS, mid.generated),
    avgPowerW: null,
    joulesPerTok: null,
    fingerprint: o.fingerprint,
    command: o.command,
    notes: [
      `GGUF ${o.ggufPath}; node-llama-cpp from ${nlc.from}; getLlama({gpu: false, build: 'never'})`,
      'gbPerS from the median inter-token latency (one decode step per token per sequence)',
    ],
  };
}
