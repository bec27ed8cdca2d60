// One CPU bench measurement in its own process (so peak RSS belongs to one model and thread count):
//   node --import tsx bench/cpu/measure.ts --model DIR --threads N [--prompt 128] [--gen 64] [--reps 5] [--isa avx2] [--quantize int8]
// One greedy request per rep through generate(), i.e. the serving Engine with ENGINE_DEFAULTS (device
// argmax op + readInt32 per step); prefill = time to the first token. Prints one JSON line: prefill
// and decode tok/s per rep, weight bytes, baseline and peak RSS, and the engine defaults it ran with.
import { readFileSync } from 'node:fs';
import { cpuEngineOptionsFromEnv, cpuPoolOptionsFromEnv, ggufMmapOptionFromEnv } from '../../src/cli/env.js';
import { selectBackend, type CpuIsa } from '../../src/runtime/select.js';
import { generate, type GenerateStats } from '../../src/engine/generate.js';
import { ENGINE_DEFAULTS } from '../../src/engine/engine-defaults.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { resolveGgufPath } from '../../src/model/gguf-model.js';
import { readGgufFile } from '../../src/model/convert/gguf-reader.js';
import { OP_NAMES } from '../../src/runtime/cpu/cpu-op-abi.js';
import { resolveWeightDType } from '../../src/model/weights.js';
import { weightBytes as planWeightBytes } from '../../src/metrics/planner.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (def === undefined) throw new Error(`missing --${name}`);
  return def;
}

const modelDir = arg('model');
const numThreads = Number(arg('threads', '1'));
const promptLen = Number(arg('prompt', '128'));
const genLen = Number(arg('gen', '64'));
const reps = Number(arg('reps', '5'));
// '' = the best ISA this CPU runs; avx2 / avx512 / generic force that kernel table.
const cpuIsa = arg('isa', '');
const quantize = arg('quantize', '') === 'int8' ? ('int8' as const) : undefined;

const baselineRssBytes = process.memoryUsage().rss;
const isaOption = cpuIsa !== '' ? { cpuIsa: cpuIsa as CpuIsa } : {};
const { backend } = selectBackend({
  device: 'cpu',
  numThreads,
  ...cpuPoolOptionsFromEnv(),
  ...cpuEngineOptionsFromEnv(),
  ...ggufMmapOptionFromEnv(),
  ...isaOption,
});
// Loader defaults, as `serve` loads a model (workspace of DEFAULT_MAX_TOKENS_PER_STEP tokens).
const { model, config } = await loadModel(modelDir, backend, quantize !== undefined ? { quantize } : {});
// Bytes read per decoded token: from the shapes, or for a GGUF file its matrices as stored (the
// embedding table counts only when it doubles as lm_head). The backend allocation also holds the workspace.
const gguf = resolveGgufPath(modelDir);
const weightBytes =
  gguf !== null
    ? ggufBytesPerToken(gguf)
    : planWeightBytes(config, quantize ?? resolveWeightDType(config.torchDType, backend.computeDType));

function ggufBytesPerToken(file: string): number {
  const t = readGgufFile(file).tensors;
  let n = 0;
  for (const x of t.values()) if (x.shape.length === 2 && (x.name !== 'token_embd.weight' || !t.has('output.weight'))) n += x.sizeBytes;
  return n;
}

let seed = 12345;
const prompt = Array.from({ length: promptLen }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return 3 + (seed % (config.vocabSize - 3));
});
const params = samplingParams({ temperature: 0, maxTokens: genLen, ignoreEos: true });

/** One request through generate() (the Engine with ENGINE_DEFAULTS): its ids and timing. */
async function once(): Promise<{ ids: number[]; stats: GenerateStats }> {
  const ids: number[] = [];
  let stats: GenerateStats | undefined;
  for await (const ev of generate(model, null, prompt, { params })) {
    ids.push(...ev.tokenIds);
    stats = ev.stats ?? stats;
  }
  return { ids, stats: stats! };
}

const prefillTokPerS: number[] = [];
const decodeTokPerS: number[] = [];
let generated: number[] = [];
for (let r = 0; r < reps + 1; r++) {
  const { ids: out, stats } = await once();
  if (r === 0) {
    generated = out;
    continue;
  } // warm-up
  prefillTokPerS.push(stats.prefillTokPerS);
  decodeTokPerS.push(stats.decodeTokPerS);
  const same = out.every((x, i) => x === generated[i]);
  if (!same) throw new Error('non-deterministic greedy output across reps');
}
// VmHWM (this process's own high-water mark): getrusage's maxRSS is inherited from the parent
// across fork/exec on Linux, so it would report the bench driver's peak instead.
function vmHwmBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS * 1024;
}
const peakRssBytes = vmHwmBytes();
const info = (backend as unknown as { info?: () => { opTimeNs?: number[]; opCalls?: number[] } }).info?.();
if (info?.opTimeNs) {
  const names = OP_NAMES;
  const total = info.opTimeNs.reduce((a, b) => a + b, 0);
  const parts = names
    .map((n, i) => [n, info.opTimeNs![i]!, info.opCalls![i]!] as const)
    .filter(([, t]) => t > 0)
    .sort((a, b) => b[1] - a[1]);
  console.error(
    parts.map(([n, t, c]) => `${n} ${((t / total) * 100).toFixed(1)}% (${c} calls, ${(t / c / 1000).toFixed(1)} us)`).join('; '),
  );
}
const isa = (backend as unknown as { isa?: string }).isa ?? 'unknown';
console.log(
  JSON.stringify({
    modelDir,
    numThreads: backend.name === 'cpu' ? numThreads : 0,
    isa,
    promptLen,
    genLen,
    reps,
    prefillTokPerS,
    decodeTokPerS,
    weightBytes,
    baselineRssBytes,
    peakRssBytes,
    firstTokens: generated.slice(0, 8),
    greedyIds: generated.slice(0, 64),
    engine: {
      ...ENGINE_DEFAULTS,
      maxTokensPerStep: model.maxTokensPerStep,
      maxLogitsPerStep: model.maxLogitsPerStep,
      kvCacheDType: model.kvCacheDType,
    },
  }),
);
model.dispose();
backend.dispose();
