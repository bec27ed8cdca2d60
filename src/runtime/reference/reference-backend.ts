// Reference backend: plain-TS loops for every op, f64 accumulation. The executable spec that every
// other backend is checked against (test/conformance). computeDType f32; tensors live in host typed
// arrays (f32: Float32Array, f16/bf16: Uint16Array of raw bits, i32: Int32Array); views share storage.
// Never optimise this file: clarity over speed. Ops run synchronously; read() resolves immediately.
import type { AttentionMetadata, Backend, BackendMemoryStats, HostData, KvLayer, Tensor } from '../backend.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, f32ToBf16, f32ToF16, type DType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { ANY_FLOAT, I32, REFERENCE_BACKEND_NAME, RefContext, RefTensor, checkShape, newStorage, toF64, toInts } from './ref-tensor.js';
import { addRmsnorm, rmsnorm } from './ops-norm.js';
import { matmul } from './ops-matmul.js';
import { matmulQ8 } from './ops-quant.js';
import { embeddingGgml, matmulGgml } from './ops-ggml.js';
import type { GgmlQuantType } from '../ggml-format.js';
import { rope } from './ops-rope.js';
import { ropeKvWriteQkv } from './ops-qkv.js';
import { attention, kvWrite } from './ops-attention.js';
import { argmax, embedding, gatherRows, siluMul } from './ops-elementwise.js';
import { applyTokenBitmask } from './ops-sampling.js';

const ALL: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'i8'];

function upload(ctx: RefContext, dst: Tensor, src: HostData, dstOffset?: number): void {
  const D = ctx.arg(dst, 'dst', ALL);
  const off = dstOffset ?? 0;
  invariant(Number.isInteger(off) && off >= 0, () => `upload: bad dstOffset ${dstOffset}`);
  if (dstOffset === undefined) {
    invariant(src.length === D.numel, () => `upload: ${src.length} values for a tensor of ${D.numel}`);
  } else {
    invariant(off + src.length <= D.numel, () => `upload: ${src.length} values at offset ${off} overflow a tensor of ${D.numel}`);
  }
  const base = D.offset + off;
  const data = D.storage.data;
  if (src instanceof Float32Array) {
    invariant(D.dtype !== 'i32' && D.dtype !== 'i8', () => `upload: Float32Array into an ${D.dtype} tensor`);
    const conv = D.dtype === 'f32' ? (x: number) => x : D.dtype === 'bf16' ? f32ToBf16 : f32ToF16;
    for (let i = 0; i < src.length; i++) data[base + i] = conv(src[i]!);
  } else if (src instanceof Uint16Array) {
    invariant(D.dtype === 'f16' || D.dtype === 'bf16', () => `upload: Uint16Array (raw half bits) into a ${D.dtype} tensor`);
    data.set(src, base);
  } else if (src instanceof Int8Array) {
    invariant(D.dtype === 'i8', () => `upload: Int8Array into a ${D.dtype} tensor`);
    data.set(src, base);
  } else {
    invariant(src instanceof Int32Array && D.dtype === 'i32', () => `upload: ${src.constructor.name} into a ${D.dtype} tensor`);
    data.set(src, base);
  }
}

export function createReferenceBackend(): Backend {
  const ctx = new RefContext();

  return {
    name: REFERENCE_BACKEND_NAME,
    computeDType: 'f32',

    alloc(shape: readonly number[], dtype: DType): Tensor {
      invariant(!ctx.disposed, 'reference backend used after dispose()');
      checkShape(shape);
      invariant(ALL.includes(dtype), () => `alloc: unknown dtype ${String(dtype)}`);
      const t = new RefTensor(ctx, shape, dtype, newStorage(dtype, numelOf(shape)), 0, false);
      ctx.owned.add(t);
      return t;
    },

    upload(dst: Tensor, src: HostData, dstOffset?: number): void {
      upload(ctx, dst, src, dstOffset);
    },

    view(t: Tensor, shape: readonly number[], offset = 0): Tensor {
      const T = ctx.arg(t, 't', ALL);
      checkShape(shape);
      const n = numelOf(shape);
      invariant(
        Number.isInteger(offset) && offset >= 0 && offset + n <= T.numel,
        () => `view: ${n} elements at offset ${offset} do not fit in a tensor of ${T.numel}`,
      );
      return new RefTensor(ctx, shape, T.dtype, T.storage, T.offset + offset, true);
    },

    read(t: Tensor): Promise<Float32Array> {
      const T = ctx.arg(t, 't', ANY_FLOAT);
      return Promise.resolve(Float32Array.from(toF64(T)));
    },

    readInt32(t: Tensor): Promise<Int32Array> {
      return Promise.resolve(toInts(ctx.arg(t, 't', I32)));
    },

    free(t: Tensor): void {
      const T = ctx.arg(t, 't', ALL);
      invariant(!T.isView, 'free() of a view: free the tensor it views instead');
      T.storage.live = false;
      ctx.owned.delete(T);
    },

    synchronize(): Promise<void> {
      invariant(!ctx.disposed, 'reference backend used after dispose()');
      return Promise.resolve();
    },

    memoryStats(): BackendMemoryStats {
      let allocatedBytes = 0;
      for (const t of ctx.owned) allocatedBytes += t.numel * DTYPE_BYTES[t.dtype];
      return { allocatedBytes, numTensors: ctx.owned.size };
    },

    dispose(): void {
      for (const t of ctx.owned) t.storage.live = false;
      ctx.owned.clear();
      ctx.disposed = true;
    },

    embedding: (out: Tensor, table: Tensor, ids: Tensor) => embedding(ctx, out, table, ids),
    rmsnorm: (out: Tensor, x: Tensor, weight: Tensor, eps: number) => rmsnorm(ctx, out, x, weight, eps),
    addRmsnorm: (out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number) => addRmsnorm(ctx, out, residual, x, weight, eps),
    matmul: (out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null) => matmul(ctx, out, x, w, bias),
    matmulQ8: (out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null) => matmulQ8(ctx, out, x, wq, scales, bias),
    matmulGgml: (out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null) => matmulGgml(ctx, out, x, w, type, bias),
    embeddingGgml: (out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor) => embeddingGgml(ctx, out, w, type, ids),
    rope: (q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor) => rope(ctx, q, k, positions, invFreq),
    kvWrite: (cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor) => kvWrite(ctx, cache, k, v, slotMapping),
    ropeKvWriteQkv: (qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor) =>
      ropeKvWriteQkv(ctx, qOut, qkv, cache, positions, invFreq, slotMapping),
    attention: (out: Tensor, q: Tensor, cache: KvLayer, meta: AttentionMetadata, scale: number, slidingWindow: number) =>
      attention(ctx, out, q, cache, meta, scale, slidingWindow),
    siluMul: (out: Tensor, gateUp: Tensor) => siluMul(ctx, out, gateUp),
    gatherRows: (out: Tensor, x: Tensor, rows: Tensor) => gatherRows(ctx, out, x, rows),
    argmax: (out: Tensor, logits: Tensor) => argmax(ctx, out, logits),
    applyTokenBitmask: (logits: Tensor, packed: Int32Array, numMasked: number, words: number) =>
      applyTokenBitmask(ctx, logits, packed, numMasked, words),
  };
}
