// Kernel micro-benchmarks on CUDA (bf16): decode GEMV vs cuBLASLt at 7B shapes, and paged decode
// attention, timed as the mean of `iters` back-to-back launches between two synchronize() calls
// (includes launch overhead, as a decode step sees it). Prints one JSON record with GB/s.
// Usage: node --import tsx bench/gpu/kernel-bench.ts [--iters 50]
import { parseArgs } from 'node:util';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';

const { values } = parseArgs({ options: { iters: { type: 'string', default: '50' } } });
const iters = Number(values.iters);
const b = createCudaBackend({ dtype: 'bf16' });

async function time(fn: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) fn();
  await b.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  await b.synchronize();
  return (performance.now() - t0) / iters / 1000;
}

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return a;
}

const results: Record<string, unknown>[] = [];
for (const [N, K, T] of [[4096, 4096, 1], [22016, 4096, 1], [4096, 11008, 1], [32000, 4096, 1], [4096, 4096, 4], [22016, 4096, 8]] as const) {
  const x = b.alloc([T, K], 'bf16');
  const w = b.alloc([N, K], 'bf16');
  const o = b.alloc([T, N], 'bf16');
  b.upload(x, fill(T * K, 1));
  b.upload(w, fill(N * K, 2));
  for (const mode of ['own', 'cublaslt'] as const) {
    if (mode === 'cublaslt' && !b.info().cublasLt) continue;
    b.matmulMode = mode;
    const s = await time(() => b.matmul(o, x, w, null));
    const bytes = 2 * (N * K + T * K + T * N);
    results.push({ op: 'matmul', path: b.lastMatmulPath, T, N, K, us: s * 1e6, gbPerS: bytes / s / 1e9 });
  }
  b.matmulMode = 'auto';
  for (const t of [x, w, o]) b.free(t);
}

for (const [ctx, H, Hkv, Dh] of [[384, 32, 32, 128], [4096, 32, 32, 128], [4096, 32, 8, 128], [32768, 32, 8, 128]] as const) {
  const bs = 16;
  const nb = Math.ceil(ctx / bs);
  const kc = b.alloc([nb, bs, Hkv, Dh], 'bf16');
  const vc = b.alloc([nb, bs, Hkv, Dh], 'bf16');
  b.upload(kc, fill(kc.numel, 3));
  b.upload(vc, fill(vc.numel, 4));
  const q = b.alloc([1, H, Dh], 'bf16');
  const out = b.alloc([1, H, Dh], 'bf16');
  b.upload(q, fill(q.numel, 5));
  const qsl = b.alloc([2], 'i32');
  const sl = b.alloc([1], 'i32');
  const bt = b.alloc([1, nb], 'i32');
  b.upload(qsl, Int32Array.of(0, 1));
  b.upload(sl, Int32Array.of(ctx));
  b.upload(bt, Int32Array.from({ length: nb }, (_, i) => i));
  const meta = { numSeqs: 1, maxQueryLen: 1, maxSeqLen: ctx, queryStartLoc: qsl, seqLens: sl, blockTables: bt };
  const s = await time(() => b.attention(out, q, { k: kc, v: vc }, meta, 1 / Math.sqrt(Dh), 0));
  const bytes = 2 * 2 * ctx * Hkv * Dh;
  results.push({ op: 'attention-decode', ctx, H, Hkv, Dh, us: s * 1e6, gbPerS: bytes / s / 1e9 });
  for (const t of [kc, vc, q, out, qsl, sl, bt]) b.free(t);
}
console.log(JSON.stringify({ device: probeCuda().devices[0]?.name, iters, results }));
b.dispose();
