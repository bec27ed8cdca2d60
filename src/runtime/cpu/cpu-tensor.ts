// CPU backend tensors: a handle over an addon-owned, 64-byte aligned buffer (exposed to JS as an
// external ArrayBuffer, so reads are plain copies). Views share the buffer at a byte offset.
// Also the command recorder and the dtype codes of the command stream (op codes and payload layouts:
// cpu-op-abi.ts, from which native/cpu/op_abi.h is generated).
import { numelOf, type Tensor } from '../backend.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { OP_FLOAT_SCALARS, OP_NAMES, OP_PAYLOAD_INTS, REF_INTS } from './cpu-op-abi.js';

export const CPU_BACKEND_NAME = 'cpu';

export const DTYPE_CODE: Readonly<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2, i32: 3, i8: 4 };

export { OP } from './cpu-op-abi.js';

/** One addon allocation. `live` turns false on free(); the ArrayBuffer is detached then. */
export interface CpuBuffer {
  readonly id: number;
  readonly buffer: ArrayBuffer;
  readonly sizeBytes: number;
  live: boolean;
  /** Over a read-only mapped file (Backend.mapWeightFile): an op input only, never written. */
  readonly mapped?: boolean;
}

export class CpuTensor implements Tensor {
  readonly backend = CPU_BACKEND_NAME;
  readonly shape: readonly number[];
  readonly numel: number;

  constructor(
    /** Identity of the backend instance that made it (two CPU backends never share tensors). */
    readonly owner: object,
    shape: readonly number[],
    readonly dtype: DType,
    readonly storage: CpuBuffer,
    readonly byteOffset: number,
    readonly isView: boolean,
  ) {
    this.shape = Object.freeze([...shape]);
    this.numel = numelOf(shape);
  }

  get sizeBytes(): number {
    return this.numel * DTYPE_BYTES[this.dtype];
  }
}

/** True when a and b share at least one byte. */
export function overlaps(a: CpuTensor, b: CpuTensor): boolean {
  if (a.storage !== b.storage || a.numel === 0 || b.numel === 0) return false;
  return a.byteOffset < b.byteOffset + b.sizeBytes && b.byteOffset < a.byteOffset + a.sizeBytes;
}

export function sameRange(a: CpuTensor, b: CpuTensor): boolean {
  return a.storage === b.storage && a.byteOffset === b.byteOffset && a.sizeBytes === b.sizeBytes;
}

/**
 * The op queue: ops are appended as int32 words [op, numInts, payload...] (layouts: cpu-op-abi.ts;
 * tensor refs are [bufferId, dtypeCode, byteOffset lo, byteOffset hi]; floats are stored as their
 * f32 bits) and run in order by one native flush() call at the next synchronization point.
 */
export class CommandRecorder {
  private ints = new Int32Array(16384);
  private floats = new Float32Array(this.ints.buffer);
  private pos = 0;
  /** Multiply-adds recorded since the last reset (decides synchronous vs worker-thread flush). */
  work = 0;

  get length(): number {
    return this.pos;
  }
  get commands(): Int32Array {
    return this.ints;
  }
  reset(): void {
    this.pos = 0;
    this.work = 0;
  }

  private reserve(need: number): void {
    if (need > this.ints.length) {
      const bigger = new Int32Array(Math.max(need, this.ints.length * 2));
      bigger.set(this.ints.subarray(0, this.pos));
      this.ints = bigger;
      this.floats = new Float32Array(bigger.buffer);
    }
  }
  /** A copy of everything recorded (a CPU "graph"). */
  snapshot(): { readonly commands: Int32Array; readonly work: number } {
    return { commands: this.ints.slice(0, this.pos), work: this.work };
  }
  /** Appends a snapshot's commands (replay). */
  append(commands: Int32Array, work: number): void {
    this.reserve(this.pos + commands.length);
    this.ints.set(commands, this.pos);
    this.pos += commands.length;
    this.work += work;
  }

  /**
   * One op: its refs then its scalars, in the order of its CPU_OP_ABI row; counts are checked against
   * the row (a mismatch is our bug), f32 scalars are written as their bits.
   */
  record(op: number, refs: readonly (CpuTensor | null)[], scalars: readonly number[]): void {
    const payload = OP_PAYLOAD_INTS[op];
    const floats = OP_FLOAT_SCALARS[op];
    invariant(payload !== undefined && floats !== undefined && op > 0, () => `cpu recorder: unknown op ${op}`);
    invariant(
      refs.length * REF_INTS + scalars.length === payload && scalars.length === floats.length,
      () => `cpu recorder: ${OP_NAMES[op]} takes ${payload} payload ints, got ${refs.length} refs + ${scalars.length} scalars`,
    );
    this.reserve(this.pos + payload + 2);
    this.ints[this.pos] = op;
    this.ints[this.pos + 1] = payload + 2;
    this.pos += 2;
    for (const t of refs) this.ref(t);
    for (let i = 0; i < scalars.length; i++) {
      if (floats[i] === true) this.floats[this.pos++] = scalars[i]!;
      else this.ints[this.pos++] = scalars[i]!;
    }
  }
  private ref(t: CpuTensor | null): void {
    const p = this.pos;
    if (t === null) {
      this.ints[p] = -1;
      this.ints[p + 1] = 0;
      this.ints[p + 2] = 0;
      this.ints[p + 3] = 0;
    } else {
      this.ints[p] = t.storage.id;
      this.ints[p + 1] = DTYPE_CODE[t.dtype];
      this.ints[p + 2] = t.byteOffset | 0;
      this.ints[p + 3] = Math.floor(t.byteOffset / 4294967296);
    }
    this.pos = p + 4;
  }
}
