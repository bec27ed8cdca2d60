// Reference backend tensors: host typed-array storage shared by views, plus checked element access.
// Storage: f32 -> Float32Array, f16/bf16 -> Uint16Array of raw bits, i32 -> Int32Array, i8 -> Int8Array.
// Every op argument goes through RefContext.arg(), which rejects foreign, freed or misshaped tensors.
import { checkArgLayout, numelOf, type Tensor } from '../backend.js';
import { bf16ToF32, f16ToF32, type DType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';

export const REFERENCE_BACKEND_NAME = 'reference';

export type RefData = Float32Array | Uint16Array | Int32Array | Int8Array;

export interface RefStorage {
  readonly data: RefData;
  live: boolean;
}

export class RefTensor implements Tensor {
  readonly backend = REFERENCE_BACKEND_NAME;
  readonly numel: number;
  readonly shape: readonly number[];

  constructor(
    /** The RefContext that created it (two reference backends do not share tensors). */
    readonly owner: RefContext,
    shape: readonly number[],
    readonly dtype: DType,
    readonly storage: RefStorage,
    /** Element offset into storage.data. */
    readonly offset: number,
    readonly isView: boolean,
  ) {
    this.shape = Object.freeze([...shape]);
    this.numel = numelOf(shape);
  }
}

export const F32: readonly DType[] = ['f32'];
export const I32: readonly DType[] = ['i32'];
export const ANY_FLOAT: readonly DType[] = ['f32', 'f16', 'bf16'];

/** A dimension of -1 in an expected shape matches anything. */
export type ShapeSpec = readonly number[];

export function checkShape(shape: readonly number[]): void {
  invariant(Array.isArray(shape), 'shape must be an array');
  for (const d of shape) invariant(Number.isInteger(d) && d >= 0, () => `bad shape [${shape.join(', ')}]`);
}

export function newStorage(dtype: DType, numel: number): RefStorage {
  const data =
    dtype === 'f32'
      ? new Float32Array(numel)
      : dtype === 'i32'
        ? new Int32Array(numel)
        : dtype === 'i8'
          ? new Int8Array(numel)
          : new Uint16Array(numel);
  return { data, live: true };
}

export class RefContext {
  disposed = false;
  /** Live non-view tensors (what memoryStats counts). */
  readonly owned = new Set<RefTensor>();

  /** Validate an op argument: ours, alive, one of dtypes, and (when given) of the expected shape. */
  arg(t: Tensor, name: string, dtypes: readonly DType[], shape?: ShapeSpec): RefTensor {
    invariant(!this.disposed, 'reference backend used after dispose()');
    invariant(t instanceof RefTensor && t.owner === this, () => `${name}: foreign tensor (backend '${(t as Tensor | null)?.backend}')`);
    invariant(t.storage.live, () => `${name}: tensor used after free()`);
    checkArgLayout(t, name, dtypes, shape);
    return t;
  }
}

let f16Table: Float32Array | null = null;
/** All 65536 f16 values decoded once (f16ToF32 is exact; the table only saves time on big weights). */
function f16Values(): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/** Element i of a float tensor, widened to a JS number (f64). */
export function floatGetter(t: RefTensor): (i: number) => number {
  const off = t.offset;
  const data = t.storage.data;
  if (t.dtype === 'f32') return (i) => data[off + i]!;
  if (t.dtype === 'bf16') return (i) => bf16ToF32(data[off + i]!);
  if (t.dtype === 'f16') {
    const table = f16Values();
    return (i) => table[data[off + i]!]!;
  }
  invariant(false, `not a float tensor: ${t.dtype}`);
}

/** A copy of a tensor's values as f64 (ints exactly). Used for small inputs and whole rows. */
export function toF64(t: RefTensor): Float64Array {
  const out = new Float64Array(t.numel);
  if (t.dtype === 'i32') {
    for (let i = 0; i < t.numel; i++) out[i] = t.storage.data[t.offset + i]!;
    return out;
  }
  const get = floatGetter(t);
  for (let i = 0; i < t.numel; i++) out[i] = get(i);
  return out;
}

/** A copy of an i32 tensor's values. */
export function toInts(t: RefTensor): Int32Array {
  invariant(t.dtype === 'i32', 'toInts on a non-i32 tensor');
  return (t.storage.data as Int32Array).slice(t.offset, t.offset + t.numel);
}

/** The writable f32 window of an f32 tensor (stores round to f32). */
export function f32Window(t: RefTensor): Float32Array {
  invariant(t.dtype === 'f32', `expected an f32 output, got ${t.dtype}`);
  return (t.storage.data as Float32Array).subarray(t.offset, t.offset + t.numel);
}

/** The writable i32 window of an i32 tensor. */
export function i32Window(t: RefTensor): Int32Array {
  invariant(t.dtype === 'i32', `expected an i32 output, got ${t.dtype}`);
  return (t.storage.data as Int32Array).subarray(t.offset, t.offset + t.numel);
}

function overlap(a: RefTensor, b: RefTensor): boolean {
  if (a.storage !== b.storage || a.numel === 0 || b.numel === 0) return false;
  return a.offset < b.offset + b.numel && b.offset < a.offset + a.numel;
}

function sameRange(a: RefTensor, b: RefTensor): boolean {
  return a.storage === b.storage && a.offset === b.offset && a.numel === b.numel;
}

/** out must not share any element with the inputs ("out may not alias an input"). */
export function noAlias(outName: string, out: RefTensor, inputs: Record<string, RefTensor>): void {
  for (const [name, t] of Object.entries(inputs)) invariant(!overlap(out, t), () => `${outName} overlaps ${name}`);
}

/** out may be exactly `allowed` (same elements), but must not partially overlap it. */
export function aliasExactOrNone(outName: string, out: RefTensor, name: string, allowed: RefTensor): void {
  invariant(sameRange(out, allowed) || !overlap(out, allowed), () => `${outName} partially overlaps ${name}`);
}
