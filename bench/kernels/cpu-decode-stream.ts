// Decode weight streaming as a model step issues it: every matmul of one stories110M-shape decode
// step (12 layers x q, k, v, o, w1, w3, w2 at T = 1, then the 32000-row classifier) queued back to
// back and flushed once, f32 weights (~436 MB: larger than any cache), so the figure is the GEMV's
// sustained GB/s with the thread pool's hand-offs between ops, next to the addon's read probe.
//   node --import tsx bench/kernels/cpu-decode-stream.ts [--threads 1,2] [--reps 7] [--dtype f32|bf16|f16] [--layers 12]
//     [--addon build/Release/tokenmill_cpu.node] (another build of the CPU addon, for A/B runs)
//     [--no-solo] (the pool never falls back to caller-only jobs)
import { parseArgs } from 'node:util';
import { configureNativeAddons } from '../../src/runtime/native.js';
import { selectBackend } from '../../src/runtime/select.js';
import { spread } from '../../src/metrics/bench/percentiles.js';
import type { Tensor } from '../../src/runtime/backend.js';
import type { FloatDType } from '../../src/runtime/dtype.js';
import { measureReadBandwidth } from '../cpu/read-bandwidth.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    reps: { type: 'string', default: '7' },
    dtype: { type: 'string', default: 'f32' },
    layers: { type: 'string', default: '12' },
    addon: { type: 'string' },
    'no-solo': { type: 'boolean', default: false },
  },
});
if (values.addon !== undefined) configureNativeAddons({ cpuAddonPath: values.addon });
const dtype = values.dtype as FloatDType;
const layers = Number(values.layers);
const dim = 768;
const hidden = 2048;
const vocab = 32000;
const shapes: [number, number][] = [];
for (let l = 0; l < layers; l++) shapes.push([dim, dim], [dim, dim], [dim, dim], [dim, dim], [hidden, dim], [hidden, dim], [dim, hidden]);
shapes.push([vocab, dim]);
const esz = dtype === 'f32' ? 4 : 2;
const bytes = shapes.reduce((s, [n, k]) => s + n * k * esz, 0);
for (const threads of values.threads!.split(',').map(Number)) {
  const probe = measureReadBandwidth(threads).median;
  const { backend: b } = selectBackend({
    device: 'cpu',
    numThreads: threads,
    ...(values['no-solo'] ? { cpuPool: { poolSolo: false } } : {}),
  });
  const ws: Tensor[] = shapes.map(([n, k]) => {
    const w = b.alloc([n, k], dtype);
    b.upload(w, new Float32Array(n * k).fill(0.01));
    return w;
  });
  const xs = new Map<number, Tensor>();
  const outs = new Map<number, Tensor>();
  for (const [n, k] of shapes) {
    if (!xs.has(k)) xs.set(k, b.alloc([1, k], 'f32'));
    if (!outs.has(n)) outs.set(n, b.alloc([1, n], 'f32'));
  }
  for (const [k, x] of xs) b.upload(x, new Float32Array(k).fill(0.5));
  const step = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < shapes.length; i++) b.matmul(outs.get(shapes[i]![0])!, xs.get(shapes[i]![1])!, ws[i]!, null);
    await b.synchronize();
    return performance.now() - t0;
  };
  await step();
  const gbs: number[] = [];
  for (let r = 0; r < Number(values.reps); r++) gbs.push(bytes / ((await step()) / 1000) / 1e9);
  const s = spread(gbs);
  const isa = (b as unknown as { isa?: string }).isa ?? '?';
  console.log(
    `${threads}t ${isa} ${dtype} ${(bytes / 1e6).toFixed(0)} MB/step: median ${s.median!.toFixed(2)} GB/s ` +
      `[${s.min!.toFixed(2)}..${s.max!.toFixed(2)}] ` +
      `= ${((100 * s.median!) / probe).toFixed(0)}% of the read probe (${probe} GB/s)`,
  );
  b.dispose();
}
