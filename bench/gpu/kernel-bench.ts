// Kernel micro-benchmarks on CUDA (bf16): decode GEMV vs cuBLASLt at 7B shapes, and paged decode
// attention, timed as the mean of `iters` back-to-back launches between two synchronize() calls
// (includes launch overhead, as a decode step sees it) and, where the backend has graphs, the same
// launches captured in one CUDA graph and replayed (GPU time without the host's per-call cost: the
// gap between the two is what decode graphs can win). Prints one JSON record with GB/s.
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

/** Seconds per launch with `iters` launches captured in one graph (null without graphs). */
async function timeGraph(fn: () => void): Promise<number | null> {
  const g = b.graphs;
  if (g === undefined) return null;
  g.capture('kernel-bench', () => {
    for (let i = 0; i < iters; i++) fn();
  });
  g.replay('kernel-bench');
  await b.synchronize();
  const reps = 5;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) g.replay('kernel-bench');
  await b.synchronize();
  g.clear();
  return (performance.now() - t0) / (reps * iters) / 1000;
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
// 12288x4096: fused q/k/v of Llama-2-7B (MHA); 6144x4096: fused q/k/v of a GQA 32/8 model (Llama-3-8B).
for (const [N, K, T] of [
  [4096, 4096, 1],
  [12288, 4096, 1],
  [6144, 4096, 1],
  [22016, 4096, 1],
  [4096, 11008, 1],
  [32000, 4096, 1],
  [4096, 4096, 4],
  [22016, 4096, 8],
] as const) {
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
    const sg = await timeGraph(() => b.matmul(o, x, w, null));
    results.push({
      op: 'matmul',
      path: b.lastMatmulPath,
      T,
      N,
      K,
      us: s * 1e6,
      gbPerS: bytes / s / 1e9,
      graphUs: sg === null ? null : sg * 1e6,
      graphGbPerS: sg === null ? null : bytes / sg / 1e9,
    });
  }
  b.matmulMode = 'auto';
  for (const t of [x, w, o]) b.free(t);
}

for (const [ctx, H, Hkv, Dh] of [
  [384, 32, 32, 128],
  [4096, 32, 32, 128],
  [4096, 32, 8, 128],
  [32768, 32, 8, 128],
] as const) {
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
  b.upload(
    bt,
    Int32Array.from({ length: nb }, (_, i) => i),
  );
  const meta = { numSeqs: 1, maxQueryLen: 1, maxSeqLen: ctx, queryStartLoc: qsl, seqLens: sl, blockTables: bt };
  const s = await time(() => b.attention(out, q, { k: kc, v: vc }, meta, 1 / Math.sqrt(Dh), 0));
  const bytes = 2 * 2 * ctx * Hkv * Dh;
  const sg = await timeGraph(() => b.attention(out, q, { k: kc, v: vc }, meta, 1 / Math.sqrt(Dh), 0));
  results.push({ op: 'attention-decode', ctx, H, Hkv, Dh, us: s * 1e6, gbPerS: bytes / s / 1e9, graphUs: sg === null ? null : sg * 1e6 });
  for (const t of [kc, vc, q, out, qsl, sl, bt]) b.free(t);
}
// rope + kvWrite vs the fused ropeKvWriteQkv, one decode token of a 7B layer (H = Hkv = 32, Dh 128).
{
  const [T, H, Hkv, Dh, nb, bs] = [1, 32, 32, 128, 64, 16];
  const qkv = b.alloc([T, (H + 2 * Hkv) * Dh], 'bf16');
  b.upload(qkv, fill(qkv.numel, 6));
  const q = b.view(qkv, [T, H, Dh], 0),
    k = b.view(qkv, [T, Hkv, Dh], H * Dh),
    v = b.view(qkv, [T, Hkv, Dh], (H + Hkv) * Dh);
  const qOut = b.alloc([T, H, Dh], 'bf16');
  const kc = b.alloc([nb, bs, Hkv, Dh], 'bf16'),
    vc = b.alloc([nb, bs, Hkv, Dh], 'bf16');
  const pos = b.alloc([T], 'i32'),
    slots = b.alloc([T], 'i32'),
    inv = b.alloc([Dh / 2], 'f32');
  b.upload(pos, Int32Array.of(100));
  b.upload(slots, Int32Array.of(100));
  b.upload(
    inv,
    Float32Array.from({ length: Dh / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / Dh)),
  );
  const unfused = (): void => {
    b.rope(q, k, pos, inv);
    b.kvWrite({ k: kc, v: vc }, k, v, slots);
  };
  const s = await time(unfused),
    sg = await timeGraph(unfused);
  results.push({ op: 'rope+kvWrite', T, H, Hkv, Dh, us: s * 1e6, graphUs: sg === null ? null : sg * 1e6 });
  const fused = b.ropeKvWriteQkv;
  if (fused !== undefined) {
    const f = (): void => fused(qOut, qkv, { k: kc, v: vc }, pos, inv, slots);
    const s2 = await time(f),
      sg2 = await timeGraph(f);
    results.push({ op: 'ropeKvWriteQkv', T, H, Hkv, Dh, us: s2 * 1e6, graphUs: sg2 === null ? null : sg2 * 1e6 });
  }
  for (const t of [qkv, qOut, kc, vc, pos, slots, inv]) b.free(t);
}
console.log(JSON.stringify({ device: probeCuda().devices[0]?.name, iters, results }));
b.dispose();
