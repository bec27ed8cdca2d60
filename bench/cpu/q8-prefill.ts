// Kernel bench for the int8 prefill (matmulQ8 at T = 128) on one stories110M-shape layer (q, k, v, o
// 768 x 768; w1, w3 2048 x 768; w2 768 x 2048), GOP/s (2 x MACs), median and max of --reps. With
// --addons A.node,B.node the builds run in one process, alternating rep by rep (a shared machine's
// swings hit both), and the B/A ratio of the medians is printed; --isas A,B does the same for two
// forced kernel ISAs of one build (e.g. avx512vnni,avx512amx). Not a test; run it quiet.
//   node --import tsx bench/cpu/q8-prefill.ts [--threads 1] [--T 128] [--reps 15] [--addons a.node,b.node]
//     [--isas a,b] [--op q8|f32]
import { parseArgs } from 'node:util';
import { quantizeRowsInt8 } from '../../src/model/quantize.js';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import { configureNativeAddons } from '../../src/runtime/native.js';
import { CPU_ISAS, selectBackend, type CpuIsa } from '../../src/runtime/select.js';
import { spread } from '../../src/metrics/bench/percentiles.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    T: { type: 'string', default: '128' },
    reps: { type: 'string', default: '15' },
    addons: { type: 'string' },
    isas: { type: 'string' },
    op: { type: 'string', default: 'q8' },
  },
});
const T = Number(values.T);
const threads = Number(values.threads);
const SHAPES: [number, number][] = [
  [768, 768],
  [768, 768],
  [768, 768],
  [768, 768],
  [2048, 768],
  [2048, 768],
  [768, 2048],
];
const macs = T * SHAPES.reduce((s, [n, k]) => s + n * k, 0);
let seed = 7;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296 - 0.5) * 0.2;

interface Setup {
  name: string;
  b: Backend;
  run: () => void;
}
function setup(name: string, path: string | undefined, cpuIsa: CpuIsa | undefined): Setup {
  if (path !== undefined) configureNativeAddons({ cpuAddonPath: path });
  const { backend: b } = selectBackend({ device: 'cpu', numThreads: threads, ...(cpuIsa ? { cpuIsa } : {}) });
  const calls: (() => void)[] = [];
  for (const [n, k] of SHAPES) {
    const wf = Float32Array.from({ length: n * k }, rnd);
    const x = b.alloc([T, k], 'f32');
    b.upload(x, Float32Array.from({ length: T * k }, rnd));
    const out = b.alloc([T, n], 'f32');
    if (values.op === 'f32') {
      const w = b.alloc([n, k], 'f32');
      b.upload(w, wf);
      calls.push(() => b.matmul(out, x, w, null));
    } else {
      const { q, scales } = quantizeRowsInt8(wf, n, k);
      const wq: Tensor = b.alloc([n, k], 'i8');
      b.upload(wq, q);
      const s = b.alloc([n], 'f32');
      b.upload(s, scales);
      calls.push(() => b.matmulQ8!(out, x, wq, s, null));
    }
  }
  return { name, b, run: () => calls.forEach((c) => c()) };
}
function isaOf(name: string): CpuIsa {
  const isa = CPU_ISAS.find((i) => i === name);
  if (isa === undefined) throw new Error(`--isas: ${name} is not one of ${CPU_ISAS.join(', ')}`);
  return isa;
}
const setups =
  values.isas !== undefined
    ? values.isas.split(',').map((i) => setup(i, undefined, isaOf(i)))
    : (values.addons?.split(',') ?? [undefined]).map((p) => setup(p ?? 'build', p, undefined));
const gops: number[][] = setups.map(() => []);
for (let r = 0; r < Number(values.reps) + 1; r++) {
  for (let i = 0; i < setups.length; i++) {
    const s = setups[i]!;
    const t0 = performance.now();
    s.run();
    await s.b.synchronize();
    const ms = performance.now() - t0;
    if (r > 0) gops[i]!.push((2 * macs) / (ms / 1000) / 1e9);
  }
}
const meds = gops.map((g) => spread(g));
setups.forEach((s, i) => {
  const m = meds[i]!;
  console.log(
    `${values.op} T=${T} ${threads}t ${s.name}: median ${m.median!.toFixed(1)} GOP/s [${m.min!.toFixed(1)}..${m.max!.toFixed(1)}]`,
  );
});
if (meds.length === 2) console.log(`ratio B/A: ${(meds[1]!.median! / meds[0]!.median!).toFixed(3)}`);
