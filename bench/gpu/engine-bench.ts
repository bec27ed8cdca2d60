// Engine benchmark on CUDA (bf16) through the synchronous Engine, decode graphs on or off: for each
// (inLen/outLen, concurrency) all requests arrive at t0 with seeded random prompts, greedy, exact
// lengths; prints one JSON line each: tok/s (generated / wall), TTFT p50 (first token of each request),
// pure-decode step time p50/p99 and its GB/s (weights + KV read per step), graph replays, capture time.
// Usage: node --import tsx bench/gpu/engine-bench.ts --model DIR [--graphs on|off|both] [--shapes 128/128]
//          [--concurrency 1] [--max-num-seqs N] [--warmup 1] [--device cuda|cpu (smoke test of this script)]
// Engine options: ENGINE_DEFAULTS except a KV pool for every request, maxModelLen = the longest shape,
// and no prefix caching (one engine serves every point with repeated seeded prompts); each line
// carries them as `engineConfig`.
import { parseArgs } from 'node:util';
import { Engine } from '../../src/engine/engine.js';
import { ENGINE_DEFAULTS, numBlocksFor } from '../../src/engine/engine-defaults.js';
import { isPureDecode } from '../../src/engine/graph-cache.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { createCpuBackend, createCudaBackend, probeCuda } from '../../src/runtime/select.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    graphs: { type: 'string', default: 'both' },
    shapes: { type: 'string', default: '128/128' },
    concurrency: { type: 'string', default: '1' },
    'max-num-seqs': { type: 'string' },
    warmup: { type: 'string', default: '1' },
    device: { type: 'string', default: 'cuda' },
  },
});
if (!values.model) throw new Error('--model DIR is required');
const shapes = values.shapes!.split(',').map((s) => s.split('/').map(Number) as [number, number]);
const concs = values.concurrency!.split(',').map(Number);
const modes = values.graphs === 'both' ? [false, true] : [values.graphs === 'on'];
const maxIn = Math.max(...shapes.map((s) => s[0]));
const maxLen = Math.max(...shapes.map((s) => s[0] + s[1])) + 16;
const maxNumSeqs = Number(values['max-num-seqs'] ?? Math.max(...concs));

const probe = values.device !== 'cpu' ? probeCuda() : null;
const cuda = values.device !== 'cpu' ? createCudaBackend({ dtype: 'bf16' }) : null;
const backend = cuda ?? createCpuBackend({ numThreads: 2 });
const loadOpts = { maxTokensPerStep: Math.max(2048, maxNumSeqs), maxLogitsPerStep: Math.max(256, maxNumSeqs) };
const { model, config: c } = await loadModel(values.model, backend, loadOpts);
const D = c.hiddenSize,
  q = c.numHeads * c.headDim,
  kv = c.numKvHeads * c.headDim;
const weightBytes = 2 * (c.numLayers * (D * q + 2 * D * kv + q * D + 3 * D * c.intermediateSize + 2 * D) + c.vocabSize * D + D);
const kvBytesPerToken = c.numLayers * 2 * kv * 2;
const blockSize = ENGINE_DEFAULTS.blockSize;
const numBlocks = numBlocksFor(maxNumSeqs, maxLen, blockSize) + 64;

let seed = 1;
const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
const prompt = (n: number): number[] => Array.from({ length: n }, () => 3 + (rand() % (Math.min(c.vocabSize, 32000) - 3)));
let nextId = 0;
const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

let lastPure = false;
/** Marks pure-decode steps (the ones graphs replay) by looking at what the runner is given. */
function watch(engine: Engine): void {
  const execute = engine.runner.execute.bind(engine.runner);
  engine.runner.execute = (out, samplerOf) => {
    lastPure = isPureDecode(out);
    return execute(out, samplerOf);
  };
}

async function point(engine: Engine, inLen: number, outLen: number, conc: number) {
  const params = samplingParams({ temperature: 0, maxTokens: outLen, ignoreEos: true });
  await backend.synchronize();
  const t0 = performance.now();
  const first = new Map<string, number>();
  for (let i = 0; i < conc; i++) engine.addRequest({ requestId: `r${nextId++}`, promptTokenIds: prompt(inLen), params });
  const decodeMs: number[] = [];
  let generated = 0;
  let decodeCtx = 0;
  while (engine.numUnfinishedRequests > 0) {
    const s = performance.now();
    lastPure = false;
    const outs = await engine.step();
    const pure = lastPure;
    const dt = performance.now() - s;
    for (const o of outs) {
      generated += o.newTokenIds.length;
      if (!first.has(o.requestId) && o.newTokenIds.length > 0) first.set(o.requestId, performance.now() - t0);
    }
    if (pure && outs.length > 0) {
      decodeMs.push(dt);
      decodeCtx += outs.reduce((a, o) => a + o.numPromptTokens + o.numGeneratedTokens, 0) / outs.length;
    }
  }
  const wallS = (performance.now() - t0) / 1000;
  const stepMs = decodeMs.length ? decodeMs.reduce((a, b) => a + b, 0) / decodeMs.length : null;
  const avgCtx = decodeMs.length ? decodeCtx / decodeMs.length : inLen + outLen / 2;
  const bytes = weightBytes + conc * avgCtx * kvBytesPerToken;
  return {
    wallS,
    generated,
    tokPerS: generated / wallS,
    ttftMsP50: pct([...first.values()], 50),
    ttftMsMax: pct([...first.values()], 100),
    decodeStepMsP50: pct(decodeMs, 50),
    decodeStepMsP99: pct(decodeMs, 99),
    decodeStepMsMean: stepMs,
    numDecodeSteps: decodeMs.length,
    decodeTokPerSPerSeq: stepMs ? 1000 / stepMs : null,
    bytesPerDecodeStep: bytes,
    gbPerS: stepMs ? bytes / (stepMs / 1000) / 1e9 : null,
  };
}

for (const graphs of modes) {
  const tc = performance.now();
  const engine = new Engine({
    model,
    numBlocks,
    maxModelLen: maxLen,
    maxNumSeqs,
    decodeGraphs: graphs,
    enablePrefixCaching: false,
    ...(Math.max(maxIn, maxNumSeqs) > ENGINE_DEFAULTS.maxNumBatchedTokens ? { maxNumBatchedTokens: Math.max(maxIn, maxNumSeqs) } : {}),
  });
  const engineConfig = { ...engine.config, kvCacheDType: model.kvCacheDType };
  await backend.synchronize();
  const startupMs = performance.now() - tc;
  watch(engine);
  for (const [inLen, outLen] of shapes) {
    for (const conc of concs) {
      for (let w = 0; w < Number(values.warmup); w++) await point(engine, Math.min(inLen, 64), 8, conc);
      const r = await point(engine, inLen, outLen, conc);
      const replays = [...(engine.runner.graphCache?.replays.values() ?? [])].reduce((a, b) => a + b, 0);
      console.log(
        JSON.stringify({
          engine: 'tokenmill-cuda-engine',
          device: cuda ? (probe?.devices[0]?.name ?? 'unknown') : 'cpu',
          dtype: backend.computeDType,
          graphs,
          graphBuckets: engine.runner.graphCache?.buckets ?? null,
          startupMs,
          graphReplaysSoFar: replays,
          inLen,
          outLen,
          concurrency: conc,
          maxNumSeqs,
          cublasLt: cuda?.info().cublasLt ?? null,
          engineConfig,
          ...r,
        }),
      );
    }
  }
  engine.dispose();
}
model.dispose();
backend.dispose();
