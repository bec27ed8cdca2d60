// Argument checks for the CUDA backend's ggml block-weight ops (Backend.matmulGgml / embeddingGgml,
// native/cuda/gemm_ggml.cu): the same shapes and dtypes as the CPU backend (cpu-ops-ggml.ts), except
// that activations are computeDType (bf16 by default) and outputs f32 or computeDType. CudaBackend
// exposes the ops only with its ggmlKernels option, off by default until the kernels have passed the
// GPU suite's conformance stage on a device.
import type { Tensor } from '../backend.js';
import { isFloatDType, type DType } from '../dtype.js';
import { GGML_BLOCK, ggmlRowElems, type GgmlQuantType } from '../ggml-format.js';
import { invariant } from '../../util/invariant.js';
import { CudaTensor } from './cuda-tensor.js';

function own(owner: object, x: Tensor, what: string): CudaTensor {
  invariant(x instanceof CudaTensor && x.owner === owner, () => `${what}: tensor does not belong to this cuda backend`);
  return x;
}

function typeCode(type: GgmlQuantType): number {
  const f = GGML_BLOCK[type];
  invariant(f !== undefined, () => `unknown ggml type ${String(type)}`);
  return f.code;
}

function overlaps(a: CudaTensor, b: CudaTensor): boolean {
  const a1 = a.ptr + a.sizeBytes,
    b1 = b.ptr + b.sizeBytes;
  return a.ptr < b1 && b.ptr < a1;
}

function weight(owner: object, w: Tensor, type: GgmlQuantType, op: string): { W: CudaTensor; rows: number; rowBytes: number; K: number } {
  const W = own(owner, w, `${op} w`);
  invariant(W.dtype === 'i8' && W.shape.length === 2, () => `${op}: w must be i8 [N, rowBytes] (raw ggml blocks)`);
  const [rows, rowBytes] = W.shape as [number, number];
  return { W, rows, rowBytes, K: ggmlRowElems(type, rowBytes) };
}

export interface GgmlMatmulCall {
  readonly out: CudaTensor;
  readonly x: CudaTensor;
  readonly w: CudaTensor;
  readonly bias: CudaTensor | null;
  readonly type: number;
  readonly rowBytes: number;
  readonly T: number;
  readonly N: number;
  readonly K: number;
}

export function ggmlMatmulCall(
  owner: object,
  computeDType: DType,
  out: Tensor,
  x: Tensor,
  w: Tensor,
  type: GgmlQuantType,
  bias: Tensor | null,
): GgmlMatmulCall {
  const code = typeCode(type);
  const { W, rows: N, rowBytes, K } = weight(owner, w, type, 'matmulGgml');
  const X = own(owner, x, 'matmulGgml x'),
    O = own(owner, out, 'matmulGgml out');
  invariant(X.dtype === computeDType && X.shape[X.shape.length - 1] === K, () => `matmulGgml: x must be [T, ${K}] ${computeDType}`);
  const T = X.numel / K;
  invariant(O.numel === T * N && (O.dtype === computeDType || O.dtype === 'f32'), 'matmulGgml: out must be [T, N] in computeDType or f32');
  const B = bias === null ? null : own(owner, bias, 'matmulGgml bias');
  invariant(B === null || (B.numel === N && isFloatDType(B.dtype)), 'matmulGgml: bias must be [N]');
  invariant(!overlaps(O, X) && !overlaps(O, W) && (B === null || !overlaps(O, B)), 'matmulGgml: out may not alias x, w or bias');
  return { out: O, x: X, w: W, bias: B, type: code, rowBytes, T, N, K };
}

export interface GgmlEmbeddingCall {
  readonly out: CudaTensor;
  readonly w: CudaTensor;
  readonly ids: CudaTensor;
  readonly type: number;
  readonly rowBytes: number;
  readonly T: number;
  readonly V: number;
  readonly K: number;
}

export function ggmlEmbeddingCall(
  owner: object,
  computeDType: DType,
  out: Tensor,
  w: Tensor,
  type: GgmlQuantType,
  ids: Tensor,
): GgmlEmbeddingCall {
  const code = typeCode(type);
  const { W, rows: V, rowBytes, K } = weight(owner, w, type, 'embeddingGgml');
  const I = own(owner, ids, 'embeddingGgml ids'),
    O = own(owner, out, 'embeddingGgml out');
  invariant(I.dtype === 'i32', 'embeddingGgml: ids must be i32');
  const T = I.numel;
  invariant(
    O.numel === T * K && (O.dtype === computeDType || O.dtype === 'f32'),
    () => `embeddingGgml: out must be [${T}, ${K}] in computeDType or f32`,
  );
  invariant(!overlaps(O, W) && !overlaps(O, I), 'embeddingGgml: out may not alias w or ids');
  return { out: O, w: W, ids: I, type: code, rowBytes, T, V, K };
}
