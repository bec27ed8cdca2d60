// CudaTensor: a device pointer with shape and dtype. Never indexed from TypeScript; only the CUDA
// backend reads its fields. Also the dtype codes shared with the addon (native/cuda/tm_cuda.h).
import type { Tensor } from '../backend.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { TokenmillError } from '../../util/errors.js';

// Keyed by string so that a DType added elsewhere (i8 quantized weights) fails at run time with a
// clear message instead of breaking this file's types; i8 tensors are stored and uploaded as bytes.
export const DTYPE_CODE: Readonly<Record<string, number>> = { f32: 0, f16: 1, bf16: 2, i32: 3, i8: 4 };

export class CudaTensor implements Tensor {
  readonly numel: number;
  readonly backend = 'cuda';
  constructor(
    readonly owner: object,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Device address of element 0. */
    readonly ptr: number,
    /** The tensor this one views (null for an allocation). */
    readonly base: CudaTensor | null,
  ) {
    this.numel = numelOf(shape);
  }
  get code(): number {
    const c = DTYPE_CODE[this.dtype];
    if (c === undefined) throw new TokenmillError('invalid_argument', `cuda: dtype ${this.dtype} is not supported`);
    return c;
  }
  get sizeBytes(): number {
    return this.numel * DTYPE_BYTES[this.dtype];
  }
}

/** Converts an addon Error ("cuda_error: ..." / "out_of_memory: ...") into a TokenmillError. */
export function toCudaError(e: unknown): TokenmillError {
  if (e instanceof TokenmillError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (msg.startsWith('out_of_memory:')) return new TokenmillError('out_of_memory', `CUDA ${msg}`, { cause: e });
  return new TokenmillError('cuda_error', msg.startsWith('cuda_error:') ? msg.slice('cuda_error:'.length).trim() : msg, { cause: e });
}
