// A simulated bf16 backend for checking the harness itself (TOKENMILL_CONFORMANCE_SELF=1): activations
// and KV stored as bf16, each op run by the reference on f32 copies and rounded back to bf16, i.e. a
// bf16 kernel with f32 math inside. It exercises the computeDType != f32 paths before a GPU exists.
import type { AttentionMetadata, Backend, KvLayer, Tensor } from '../../src/runtime/backend.js';
import { f32ToBf16 } from '../../src/runtime/dtype.js';
import { createReferenceBackend } from '../../src/runtime/reference/reference-backend.js';
import { toF64, type RefTensor } from '../../src/runtime/reference/ref-tensor.js';

export function createBf16SimBackend(): Backend {
  const ref = createReferenceBackend();

  /** Runs op on f32 copies of the bf16 arguments (weights excepted), then rounds them back. */
  function run<A extends (Tensor | null)[]>(args: A, keep: Set<number>, op: (...xs: A) => void): void {
    const temps = new Map<Tensor, Tensor>();
    const mapped = args.map((t, i) => {
      if (t === null || t.dtype !== 'bf16' || keep.has(i)) return t;
      const r = t as RefTensor;
      const same = [...temps.keys()].find((u) => {
        const o = u as RefTensor;
        return o.storage === r.storage && o.offset === r.offset && o.numel === r.numel;
      }); // two view objects over the same elements must share one copy (out may alias x)
      let f = temps.get(same ?? t);
      if (!f) {
        f = ref.alloc(t.shape, 'f32');
        ref.upload(f, Float32Array.from(toF64(t as RefTensor)));
        temps.set(t, f);
      }
      return f;
    }) as A;
    op(...mapped);
    for (const [t, f] of temps) {
      const values = toF64(f as RefTensor);
      const bits = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) bits[i] = f32ToBf16(values[i]!);
      ref.upload(t, bits);
      ref.free(f);
    }
  }
  const none = new Set<number>();

  return {
    ...ref,
    name: 'reference-bf16-sim',
    computeDType: 'bf16',
    alloc: (shape, dtype) => ref.alloc(shape, dtype),
    upload: (dst, src, off) => ref.upload(dst, src, off),
    view: (t, shape, off) => ref.view(t, shape, off),
    read: (t) => ref.read(t),
    readInt32: (t) => ref.readInt32(t),
    free: (t) => ref.free(t),
    synchronize: () => ref.synchronize(),
    memoryStats: () => ref.memoryStats(),
    dispose: () => ref.dispose(),
    embedding: (out, table, ids) => run([out, table, ids], new Set([1]), (o, tb, i) => ref.embedding(o!, tb!, i!)),
    rmsnorm: (out, x, w, eps) => run([out, x, w], none, (o, xx, ww) => ref.rmsnorm(o!, xx!, ww!, eps)),
    addRmsnorm: (out, res, x, w, eps) => run([out, res, x, w], none, (o, r, xx, ww) => ref.addRmsnorm(o!, r!, xx!, ww!, eps)),
    matmul: (out, x, w, bias) => run([out, x, w, bias], new Set([2]), (o, xx, ww, b) => ref.matmul(o!, xx!, ww!, b)),
    matmulQ8: (out, x, wq, scales, bias) =>
      run([out, x, wq, scales, bias], new Set([2, 3]), (o, xx, w, s, b) => ref.matmulQ8!(o!, xx!, w!, s!, b)),
    rope: (q, k, pos, inv) => run([q, k, pos, inv], none, (qq, kk, p, f) => ref.rope(qq!, kk!, p!, f!)),
    kvWrite: (cache: KvLayer, k, v, slots) =>
      run([cache.k, cache.v, k, v, slots], none, (ck, cv, kk, vv, s) => ref.kvWrite({ k: ck!, v: cv! }, kk!, vv!, s!)),
    attention: (out, q, cache: KvLayer, meta: AttentionMetadata, scale, window) =>
      run([out, q, cache.k, cache.v], none, (o, qq, ck, cv) => ref.attention(o!, qq!, { k: ck!, v: cv! }, meta, scale, window)),
    siluMul: (out, gu) => run([out, gu], none, (o, g) => ref.siluMul(o!, g!)),
    gatherRows: (out, x, rows) => run([out, x, rows], none, (o, xx, r) => ref.gatherRows(o!, xx!, r!)),
    argmax: (out, logits) => ref.argmax(out, logits),
  };
}
