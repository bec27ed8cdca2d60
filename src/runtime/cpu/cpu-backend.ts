// Backend over the native CPU kernels (native/cpu via tokenmill_cpu.node). Ops are validated here,
// recorded into a CommandRecorder (the op queue) and executed in order by the addon's thread pool at
// the next synchronization point. read*() / synchronize() run a large queue (>= asyncMinWork
// multiply-adds, e.g. a prefill) on a worker thread and resolve when done, keeping the event loop
// free; small queues (decode of small models) run synchronously, which is faster. upload(), free()
// and alloc() wait for queued work synchronously.
// This file: the Backend surface (memory, tensors, the ops, which cpu-ops.ts records); the queue and
// its execution are in cpu-op-queue.ts, the addon checks in cpu-addon.ts.
import type {
  AllocOptions,
  AttentionMetadata,
  Backend,
  BackendMemoryStats,
  HostData,
  KvLayer,
  MappedWeightFile,
  ReadOptions,
  Tensor,
} from '../backend.js';
import { applyTokenBitmaskInPlace } from '../token-bitmask.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, halfToF32, type DType } from '../dtype.js';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { CPU_BACKEND_NAME, CpuTensor, DTYPE_CODE, type CpuBuffer } from './cpu-tensor.js';
import { recordOps } from './cpu-ops.js';
import type { GgmlQuantType } from '../ggml-format.js';
import { nativeError, usableCpuAddon } from './cpu-addon.js';
import { CpuOpQueue, type CpuBackendOptions } from './cpu-op-queue.js';
import { mapCpuWeightFile } from './cpu-mapped-file.js';
import type { MappedFileHandle } from '../native.js';

export { ASYNC_MIN_WORK_DEFAULT, type CpuBackendOptions } from './cpu-op-queue.js';
export { CPU_ISAS, cpuAddonAvailable, nativeError, physicalCoreCount, type CpuIsa } from './cpu-addon.js';

export class CpuBackend extends CpuOpQueue implements Backend {
  readonly name = CPU_BACKEND_NAME;
  readonly computeDType = 'f32' as const;
  private readonly owned = new Set<CpuTensor>();
  private allocatedBytes = 0;
  private mappedBytes = 0;

  // ---------------------------------------------------------------------------------- memory
  alloc(shape: readonly number[], dtype: DType, opts?: AllocOptions): Tensor {
    this.notCapturing('alloc');
    const engine = this.live();
    if (this.inflight !== null) this.flush();
    for (const d of shape) invariant(Number.isInteger(d) && d >= 0, () => `alloc: bad shape [${shape.join(', ')}]`);
    invariant(DTYPE_CODE[dtype] !== undefined, `alloc: bad dtype ${dtype}`);
    const sizeBytes = numelOf(shape) * DTYPE_BYTES[dtype];
    let id: number;
    let buffer: ArrayBuffer;
    try {
      [id, buffer] = this.addon.alloc(engine, sizeBytes);
    } catch (e) {
      throw nativeError(e);
    }
    // The addon's memory is malloc'd, so untouched pages are not resident until first written.
    if (opts?.resident === true) new Uint8Array(buffer, 0, sizeBytes).fill(0);
    const storage: CpuBuffer = { id, buffer, sizeBytes, live: true };
    const t = new CpuTensor(this, shape, dtype, storage, 0, false);
    this.owned.add(t);
    this.allocatedBytes += sizeBytes;
    return t;
  }

  mapWeightFile(path: string): MappedWeightFile | null {
    this.notCapturing('mapWeightFile');
    this.live();
    if (!this.mmap) return null;
    return mapCpuWeightFile(this.addon, path, (handle, shape, dtype, byteOffset) => this.adoptMapped(handle, shape, dtype, byteOffset));
  }

  /** A tensor over bytes of a mapped file (range checked by the caller and natively). */
  private adoptMapped(handle: MappedFileHandle, shape: readonly number[], dtype: DType, byteOffset: number): Tensor {
    const engine = this.live();
    if (this.inflight !== null) this.flush();
    for (const d of shape) invariant(Number.isInteger(d) && d >= 0, () => `mapped tensor: bad shape [${shape.join(', ')}]`);
    const sizeBytes = numelOf(shape) * DTYPE_BYTES[dtype];
    let id: number;
    let buffer: ArrayBuffer;
    try {
      [id, buffer] = this.addon.allocMapped!(engine, handle, byteOffset, sizeBytes);
    } catch (e) {
      throw nativeError(e);
    }
    const t = new CpuTensor(this, shape, dtype, { id, buffer, sizeBytes, live: true, mapped: true }, 0, false);
    this.owned.add(t);
    this.allocatedBytes += sizeBytes;
    this.mappedBytes += sizeBytes;
    return t;
  }

  upload(dst: Tensor, src: HostData, dstOffset = 0): void {
    const t = this.arg(dst, 'upload dst', ['f32', 'f16', 'bf16', 'i32', 'i8']);
    invariant(t.storage.mapped !== true, 'upload: the destination is a read-only mapped weight');
    invariant(
      Number.isInteger(dstOffset) && dstOffset >= 0 && dstOffset + src.length <= t.numel,
      () => `upload: ${src.length} elements at offset ${dstOffset} do not fit in ${t.numel}`,
    );
    this.flush(); // earlier ops may still read dst
    const esz = DTYPE_BYTES[t.dtype];
    const byteOffset = t.byteOffset + dstOffset * esz;
    const buf = t.storage.buffer;
    if (src instanceof Float32Array) {
      invariant(t.dtype !== 'i32' && t.dtype !== 'i8', () => `upload: Float32Array into an ${t.dtype} tensor`);
      if (t.dtype === 'f32') new Float32Array(buf, byteOffset, src.length).set(src);
      else {
        try {
          this.addon.convertFromF32(this.live(), src, t.storage.id, byteOffset, DTYPE_CODE[t.dtype]);
        } catch (e) {
          throw nativeError(e);
        }
      }
    } else if (src instanceof Uint16Array) {
      invariant(t.dtype === 'f16' || t.dtype === 'bf16', () => `upload: Uint16Array into a ${t.dtype} tensor`);
      new Uint16Array(buf, byteOffset, src.length).set(src);
    } else if (src instanceof Int8Array) {
      invariant(t.dtype === 'i8', () => `upload: Int8Array into a ${t.dtype} tensor`);
      new Int8Array(buf, byteOffset, src.length).set(src);
    } else {
      invariant(src instanceof Int32Array && t.dtype === 'i32', () => `upload: ${src.constructor.name} into a ${t.dtype} tensor`);
      new Int32Array(buf, byteOffset, src.length).set(src);
    }
  }

  view(t: Tensor, shape: readonly number[], offset = 0): Tensor {
    const base = this.arg(t, 'view', ['f32', 'f16', 'bf16', 'i32', 'i8']);
    for (const d of shape) invariant(Number.isInteger(d) && d >= 0, () => `view: bad shape [${shape.join(', ')}]`);
    const n = numelOf(shape);
    invariant(
      Number.isInteger(offset) && offset >= 0 && offset + n <= base.numel,
      () => `view: [${shape.join(', ')}] at ${offset} exceeds ${base.numel} elements`,
    );
    return new CpuTensor(this, shape, base.dtype, base.storage, base.byteOffset + offset * DTYPE_BYTES[base.dtype], true);
  }

  async read(t: Tensor, opts?: ReadOptions): Promise<Float32Array> {
    const x = this.arg(t, 'read', ['f32', 'f16', 'bf16']);
    await this.drain(opts?.overlapHostWork === true);
    invariant(x.storage.live, 'read: tensor freed while its read was pending');
    if (x.dtype === 'f32') return new Float32Array(x.storage.buffer, x.byteOffset, x.numel).slice();
    return halfToF32(new Uint16Array(x.storage.buffer, x.byteOffset, x.numel), x.dtype as 'f16' | 'bf16');
  }

  async readInt32(t: Tensor): Promise<Int32Array> {
    const x = this.arg(t, 'readInt32', ['i32']);
    await this.drain();
    invariant(x.storage.live, 'readInt32: tensor freed while its read was pending');
    return new Int32Array(x.storage.buffer, x.byteOffset, x.numel).slice();
  }

  free(t: Tensor): void {
    const x = this.arg(t, 'free', ['f32', 'f16', 'bf16', 'i32', 'i8']);
    invariant(!x.isView, 'free: views are not freed (free the tensor they view)');
    this.flush();
    x.storage.live = false;
    this.owned.delete(x);
    this.allocatedBytes -= x.storage.sizeBytes;
    if (x.storage.mapped === true) this.mappedBytes -= x.storage.sizeBytes;
    try {
      this.addon.free(this.live(), x.storage.id, x.storage.buffer);
    } catch (e) {
      throw nativeError(e);
    }
  }

  synchronize(): Promise<void> {
    return this.drain();
  }

  memoryStats(): BackendMemoryStats {
    const stats = { allocatedBytes: this.allocatedBytes, numTensors: this.owned.size };
    return this.mappedBytes > 0 ? { ...stats, mappedBytes: this.mappedBytes } : stats;
  }

  dispose(): void {
    this.notCapturing('dispose');
    if (this.engine === null) return;
    const engine = this.engine;
    this.rec.reset();
    if (this.inflight !== null) {
      this.inflight = null;
      try {
        this.addon.waitIdle(engine);
      } catch {
        /* disposing anyway */
      }
    }
    for (const t of this.owned) {
      t.storage.live = false;
      try {
        this.addon.free(engine, t.storage.id, t.storage.buffer);
      } catch {
        /* freed below with the engine anyway */
      }
    }
    this.owned.clear();
    this.allocatedBytes = 0;
    this.mappedBytes = 0;
    this.engine = null;
    this.addon.destroyEngine(engine);
  }

  // ------------------------------------------------------------------------------------- ops
  embedding(out: Tensor, table: Tensor, ids: Tensor): void {
    recordOps.embedding(this, out, table, ids);
  }
  rmsnorm(out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    recordOps.rmsnorm(this, out, x, weight, eps);
  }
  addRmsnorm(out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    recordOps.addRmsnorm(this, out, residual, x, weight, eps);
  }
  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null): void {
    recordOps.matmul(this, out, x, w, bias);
  }
  /** Weight-only int8 matmul (native/cpu/matmul_q8.cpp). */
  matmulQ8(out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null): void {
    recordOps.matmulQ8(this, out, x, wq, scales, bias);
  }
  /** Weight-only matmul on ggml blocks (native/cpu/matmul_ggml.cpp). */
  matmulGgml(out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null): void {
    recordOps.matmulGgml(this, out, x, w, type, bias);
  }
  embeddingGgml(out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor): void {
    recordOps.embeddingGgml(this, out, w, type, ids);
  }
  rope(q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor): void {
    recordOps.rope(this, q, k, positions, invFreq);
  }
  kvWrite(cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor): void {
    recordOps.kvWrite(this, cache, k, v, slotMapping);
  }
  /** The optional fused op: bit-identical to rope + kvWrite on the split q, k, v. */
  ropeKvWriteQkv(qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor): void {
    recordOps.ropeKvWriteQkv(this, qOut, qkv, cache, positions, invFreq, slotMapping);
  }
  attention(out: Tensor, q: Tensor, cache: KvLayer, meta: AttentionMetadata, scale: number, slidingWindow: number): void {
    recordOps.attention(this, out, q, cache, meta, scale, slidingWindow);
  }
  siluMul(out: Tensor, gateUp: Tensor): void {
    recordOps.siluMul(this, out, gateUp);
  }
  gatherRows(out: Tensor, x: Tensor, rows: Tensor): void {
    recordOps.gatherRows(this, out, x, rows);
  }
  argmax(out: Tensor, logits: Tensor): void {
    recordOps.argmax(this, out, logits);
  }

  /** Backend.applyTokenBitmask: runs the queue (the logits must exist), then masks on this thread. */
  applyTokenBitmask(logits: Tensor, packed: Int32Array, numMasked: number, words: number): void {
    const l = this.arg(logits, 'applyTokenBitmask logits', ['f32']);
    invariant(l.shape.length === 2, 'applyTokenBitmask: logits must be [S, V]');
    this.flush();
    applyTokenBitmaskInPlace(new Float32Array(l.storage.buffer, l.byteOffset, l.numel), l.shape[1]!, packed, numMasked, words);
  }
}

export function createCpuBackend(opts: CpuBackendOptions = {}): Backend {
  const load = usableCpuAddon();
  if (load.addon === null) throw new TokenmillError('backend_unavailable', `cpu backend: ${load.reason}`);
  return new CpuBackend(load.addon, opts);
}
