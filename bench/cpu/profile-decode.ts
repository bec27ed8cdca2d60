// Profile of steady batched decode on the CPU backend: N sequences (inLen prompt, greedy) stepped
// through Engine directly (bench engine's options: ENGINE_DEFAULTS + a KV pool for all N); prints
// per-step wall time of pure-decode steps (median/min/max), the share spent in native ops (the CPU
// engine's per-op profile, switched on here) and the host remainder; then the same for the prefill
// steps (prompt tok/s).
// node --import tsx bench/cpu/profile-decode.ts --model DIR [--graphs] [--threads 1] [--seqs 1,8,32] [--in 128] [--out 128]
//   [--kv-cache-dtype f16] [--quantize int8|q8_0] [--addon FILE.node] [--isa avx512vnni]
import { parseArgs } from 'node:util';
import { configureNativeAddons } from '../../src/runtime/native.js';
import type { QuantizeMode } from '../../src/model/quantize.js';
import { benchEngineOptions } from '../../src/cli/bench-engine.js';
import { Engine } from '../../src/engine/engine.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { CPU_ISAS, selectBackend } from '../../src/runtime/select.js';
import { OP } from '../../src/runtime/cpu/cpu-tensor.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '0' },
    seqs: { type: 'string', default: '1,8,32' },
    in: { type: 'string', default: '128' },
    out: { type: 'string', default: '128' },
    'kv-cache-dtype': { type: 'string', default: 'auto' },
    graphs: { type: 'boolean', default: false },
    quantize: { type: 'string' },
    addon: { type: 'string' },
    isa: { type: 'string' },
  },
});
if (values.addon !== undefined) configureNativeAddons({ cpuAddonPath: values.addon });
const threads = Number(values.threads);
const graphs = values.graphs === true;
const cpuIsa = CPU_ISAS.find((i) => i === values.isa);
if (values.isa !== undefined && cpuIsa === undefined) throw new Error(`--isa: one of ${CPU_ISAS.join(', ')}`);
const { backend } = selectBackend({
  device: 'cpu',
  cpuEngine: { profile: true },
  graphs,
  ...(threads > 0 ? { numThreads: threads } : {}),
  ...(cpuIsa ? { cpuIsa } : {}),
});
const seqList = values.seqs!.split(',').map(Number);
const inLen = Number(values.in),
  outLen = Number(values.out);
const loaded = await loadModel(values.model!, backend, {
  maxLogitsPerStep: 256,
  maxTokensPerStep: 512,
  kvCacheDType: values['kv-cache-dtype'] as 'auto' | 'f32' | 'f16' | 'bf16',
  ...(values.quantize !== undefined ? { quantize: values.quantize as QuantizeMode } : {}),
});
const info = (): { opTimeNs: readonly number[]; opCalls: readonly number[] } =>
  (backend as unknown as { info(): { opTimeNs: number[]; opCalls: number[] } }).info();
const names = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));
const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
for (const n of seqList) {
  const engine = new Engine({ ...benchEngineOptions(loaded.model, { inLen, outLen }, n), ...(graphs ? { decodeGraphs: true } : {}) });
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) % loaded.config.vocabSize;
  for (let i = 0; i < n; i++)
    engine.addRequest({
      requestId: `r${i}`,
      promptTokenIds: Array.from({ length: inLen }, rnd),
      params: samplingParams({ temperature: 0, maxTokens: outLen, ignoreEos: true }),
    });
  const stepMs: number[] = [];
  let nativeNs0: number[] = [];
  let nativeNs1: number[] = [];
  let calls0: number[] = [];
  let calls1: number[] = [];
  let decodeMs = 0,
    decodeSteps = 0,
    decodeTokens = 0,
    prefillMs = 0,
    prefillSteps = 0;
  const prefillNs: number[] = [];
  while (engine.hasWork()) {
    const prefill = engine.scheduler.numWaiting > 0;
    const before = info();
    const t0 = performance.now();
    const outs = await engine.step();
    const dt = performance.now() - t0;
    if (!prefill && decodeSteps === 0) {
      nativeNs0 = [...before.opTimeNs];
      calls0 = [...before.opCalls];
    }
    if (prefill) {
      const after = info();
      prefillMs += dt;
      prefillSteps++;
      for (let i = 0; i < after.opTimeNs.length; i++) prefillNs[i] = (prefillNs[i] ?? 0) + after.opTimeNs[i]! - (before.opTimeNs[i] ?? 0);
    }
    if (!prefill) {
      stepMs.push(dt);
      decodeMs += dt;
      decodeSteps++;
      decodeTokens += outs.reduce((a, o) => a + o.newTokenIds.length, 0);
      const after = info();
      nativeNs1 = [...after.opTimeNs];
      calls1 = [...after.opCalls];
    }
  }
  const nativeMs = nativeNs1.reduce((a, v, i) => a + v - (nativeNs0[i] ?? 0), 0) / 1e6;
  console.log(
    `\n== ${n} seqs, ${backend.name} threads=${threads || 'default'}: ${decodeSteps} decode steps, step p50 ` +
      `${med(stepMs).toFixed(2)} ms [${Math.min(...stepMs).toFixed(2)}-${Math.max(...stepMs).toFixed(2)}], ` +
      `${((decodeTokens / decodeMs) * 1000).toFixed(0)} tok/s decode-only`,
  );
  console.log(
    `   native ops ${(nativeMs / decodeSteps).toFixed(3)} ms/step, host remainder ` +
      `${((decodeMs - nativeMs) / decodeSteps).toFixed(3)} ms/step`,
  );
  for (let i = 0; i < nativeNs1.length; i++) {
    const d = (nativeNs1[i]! - (nativeNs0[i] ?? 0)) / 1e6;
    if (d > 0)
      console.log(
        `   ${(names[i] ?? `op${i}`).padEnd(16)} ${(d / decodeSteps).toFixed(3)} ms/step  ` +
          `${((calls1[i]! - (calls0[i] ?? 0)) / decodeSteps).toFixed(1)} calls/step`,
      );
  }
  const pNative = prefillNs.reduce((a, v) => a + v, 0) / 1e6;
  console.log(
    `   prefill: ${prefillSteps} steps, ${prefillMs.toFixed(1)} ms (${(((n * inLen) / prefillMs) * 1000).toFixed(0)} prompt ` +
      `tok/s), native ${pNative.toFixed(1)} ms: ` +
      prefillNs
        .map((v, i) => (v > 0.02 * pNative * 1e6 ? `${names[i] ?? i} ${(v / 1e6).toFixed(1)}` : ''))
        .filter((x) => x !== '')
        .join(', '),
  );
  engine.dispose();
}
loaded.model.dispose();
backend.dispose();
