// Kernel bench for matmulGgml on the CPU backend: decode (T=1) and prefill (T=128) over --mib of
// weights of each type (seeded, quantized once; more than the L3 by default, so decode streams from
// DRAM), GB/s of weight bytes streamed and GOP/s, median [min..max] of --reps after a warm-up, next
// to the f32 matmul's streaming rate on the same bytes. --isas a,b builds one backend per forced
// kernel ISA (e.g. avx512vnni,avx512amx) in this process and alternates them rep by rep, so a shared
// machine's swings hit both, then prints the B/A ratio of the medians. Not a test; run it quiet.
//   node --import tsx bench/cpu/ggml-matmul.ts [--threads 1] [--types Q8_0,Q4_0,Q4_K,Q6_K] [--K 2048]
//     [--mib 64] [--T 1,128] [--reps 5] [--isas a,b] [--addon FILE.node]
import { parseArgs } from 'node:util';
import { quantizeMatrix } from '../../src/model/convert/ggml-quantize.js';
import { ggmlRowBytes, type GgmlQuantType } from '../../src/runtime/ggml-format.js';
import { configureNativeAddons } from '../../src/runtime/native.js';
import { CPU_ISAS, selectBackend, type CpuIsa } from '../../src/runtime/select.js';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import { spread } from '../../src/metrics/bench/percentiles.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    types: { type: 'string', default: 'Q8_0,Q4_0,Q4_K,Q6_K' },
    K: { type: 'string', default: '2048' },
    mib: { type: 'string', default: '64' },
    T: { type: 'string', default: '1,128' },
    reps: { type: 'string', default: '5' },
    isas: { type: 'string' },
    addon: { type: 'string' },
  },
});
const threads = Number(values.threads);
const types = values.types.split(',') as GgmlQuantType[];
const K = Number(values.K);
const mib = Number(values.mib);
const reps = Number(values.reps);
const Ts = values.T.split(',').map(Number);
if (values.addon !== undefined) configureNativeAddons({ cpuAddonPath: values.addon });
function isaOf(name: string): CpuIsa {
  const isa = CPU_ISAS.find((i) => i === name);
  if (isa === undefined) throw new Error(`--isas: ${name} is not one of ${CPU_ISAS.join(', ')}`);
  return isa;
}
const isaNames = values.isas?.split(',') ?? ['auto'];
const backends: Backend[] = isaNames.map((name) => {
  const cpuIsa = name === 'auto' ? undefined : isaOf(name);
  return selectBackend({ device: 'cpu', numThreads: threads, ...(cpuIsa ? { cpuIsa } : {}) }).backend;
});

/** Milliseconds per run for each backend: one warm-up, then --reps runs alternating the backends. */
async function timeAll(runs: (() => void)[]): Promise<number[][]> {
  const ms: number[][] = runs.map(() => []);
  for (let r = 0; r <= reps; r++) {
    for (let i = 0; i < runs.length; i++) {
      const t0 = performance.now();
      runs[i]!();
      await backends[i]!.synchronize();
      if (r > 0) ms[i]!.push(performance.now() - t0);
    }
  }
  return ms;
}
function report(label: string, ms: number[][], bytes: number, ops: number): void {
  const meds: number[] = [];
  ms.forEach((m, i) => {
    const rate = m.map((x) => bytes / (x / 1000) / 1e9);
    const s = spread(rate);
    meds.push(s.median!);
    const gops = (ops * s.median!) / bytes; // ops per second / 1e9 at the median rate
    console.log(
      `${label} threads=${threads} ${isaNames[i]}: ${s.median!.toFixed(2)} GB/s [${s.min!.toFixed(2)}..${s.max!.toFixed(2)}] ` +
        `of weights, ${gops.toFixed(1)} GOP/s (median of ${reps})`,
    );
  });
  if (meds.length === 2) console.log(`${label} ratio ${isaNames[1]}/${isaNames[0]}: ${(meds[1]! / meds[0]!).toFixed(3)}`);
}

const N = 1024;
let s = 1;
const proto = Float32Array.from({ length: N * K }, () => {
  s = (s * 1103515245 + 12345) >>> 0;
  return (s / 4294967296 - 0.5) * 0.1;
});
{
  // f32 rate on one matrix reused: L2/L3-resident when small, so an upper line, not a DRAM figure.
  const M = Math.max(1, Math.round((mib * 2 ** 20) / (N * K * 4)));
  const runs = backends.map((b) => {
    const wf = b.alloc([N, K], 'f32');
    b.upload(wf, proto);
    const x = b.alloc([1, K], 'f32');
    b.upload(x, new Float32Array(K).fill(0.5));
    const out = b.alloc([1, N], 'f32');
    return () => {
      for (let i = 0; i < M; i++) b.matmul(out, x, wf, null);
    };
  });
  report(`f32 T=1 (${M} x one [${N}, ${K}] matrix)`, await timeAll(runs), M * N * K * 4, 2 * M * N * K);
}
for (const type of types) {
  const rowBytes = ggmlRowBytes(type, K);
  const bytes = new Int8Array(quantizeMatrix(type, proto, N, K).buffer);
  const M = Math.max(1, Math.round((mib * 2 ** 20) / (N * rowBytes)));
  const weights: Tensor[][] = backends.map((b) =>
    Array.from({ length: M }, () => {
      const w = b.alloc([N, rowBytes], 'i8');
      b.upload(w, bytes);
      return w;
    }),
  );
  for (const T of Ts) {
    const runs = backends.map((b, i) => {
      const x = b.alloc([T, K], 'f32');
      b.upload(
        x,
        Float32Array.from({ length: T * K }, (_, j) => ((j * 37) % 101) / 101 - 0.5),
      );
      const out = b.alloc([T, N], 'f32');
      return () => {
        for (const w of weights[i]!) b.matmulGgml!(out, x, w, type, null);
      };
    });
    report(`${type} T=${T} (${M} x [${N}, ${K}])`, await timeAll(runs), M * N * rowBytes, 2 * T * M * N * K);
  }
  weights.forEach((ws, i) => ws.forEach((w) => backends[i]!.free(w)));
}
for (const b of backends) b.dispose();
