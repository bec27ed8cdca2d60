// Kernel bench for matmulGgml on the CPU backend: decode (T=1) and prefill (T=128) over --mib of
// weights of each type (seeded, quantized once), best of 5 after a warm-up, GB/s of weight bytes
// streamed, next to the f32 matmul's streaming rate on the same bytes. Not a test; run it quiet.
//   node --import tsx bench/cpu/ggml-matmul.ts [--threads 1] [--types Q8_0,Q4_0,Q4_K,Q6_K] [--K 2048] [--mib 64] [--addon FILE.node]
import { quantizeMatrix } from '../../src/model/convert/ggml-quantize.js';
import { ggmlRowBytes, type GgmlQuantType } from '../../src/runtime/ggml-format.js';
import { configureNativeAddons } from '../../src/runtime/native.js';
import { selectBackend } from '../../src/runtime/select.js';
import type { Tensor } from '../../src/runtime/backend.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const threads = Number(arg('threads', '1'));
const types = arg('types', 'Q8_0,Q4_0,Q4_K,Q6_K').split(',') as GgmlQuantType[];
const K = Number(arg('K', '2048'));
const mib = Number(arg('mib', '64'));
const addon = arg('addon', '');
if (addon !== '') configureNativeAddons({ cpuAddonPath: addon });
const { backend: b } = selectBackend({ device: 'cpu', numThreads: threads });

async function best(run: () => void): Promise<number> {
  let ms = Infinity;
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    run();
    await b.synchronize();
    if (r > 0) ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

const N = 1024;
let s = 1;
const proto = Float32Array.from({ length: N * K }, () => {
  s = (s * 1103515245 + 12345) >>> 0;
  return (s / 4294967296 - 0.5) * 0.1;
});
{
  const wf = b.alloc([N, K], 'f32');
  b.upload(wf, proto);
  const x = b.alloc([1, K], 'f32');
  b.upload(x, new Float32Array(K).fill(0.5));
  const out = b.alloc([1, N], 'f32');
  const M = Math.max(1, Math.round((mib * 2 ** 20) / (N * K * 4)));
  const ms = await best(() => {
    for (let i = 0; i < M; i++) b.matmul(out, x, wf, null);
  });
  console.log(
    `f32 T=1 threads=${threads}: ${ms.toFixed(2)} ms for ${M} x [${N}, ${K}] -> ` +
      `${((M * N * K * 4) / (ms / 1000) / 1e9).toFixed(2)} GB/s (one matrix reused: L2/L3-resident when small)`,
  );
  for (const t of [wf, x, out]) b.free(t);
}
for (const type of types) {
  const rowBytes = ggmlRowBytes(type, K);
  const bytes = quantizeMatrix(type, proto, N, K);
  const M = Math.max(1, Math.round((mib * 2 ** 20) / (N * rowBytes)));
  const ws: Tensor[] = Array.from({ length: M }, () => {
    const w = b.alloc([N, rowBytes], 'i8');
    b.upload(w, new Int8Array(bytes.buffer));
    return w;
  });
  for (const T of [1, 128]) {
    const x = b.alloc([T, K], 'f32');
    b.upload(x, new Float32Array(T * K).fill(0.5));
    const out = b.alloc([T, N], 'f32');
    const ms = await best(() => {
      for (const w of ws) b.matmulGgml!(out, x, w, type, null);
    });
    const gb = (M * N * rowBytes) / (ms / 1000) / 1e9;
    const gflop = (2 * T * M * N * K) / (ms / 1000) / 1e9;
    console.log(
      `${type} T=${T} threads=${threads}: ${ms.toFixed(2)} ms for ${M} x [${N}, ${K}] -> ${gb.toFixed(2)} GB/s of blocks, ` +
        `${gflop.toFixed(1)} GFLOP/s`,
    );
    b.free(x);
    b.free(out);
  }
  for (const w of ws) b.free(w);
}
b.dispose();
