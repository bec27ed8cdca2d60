// The CUDA backend's device memory and tensors: one device context (stream, cuBLASLt, block cache)
// per backend, the argument checks every op runs first, allocation, upload, views, the async reads
// and dispose. CUDA failures surface as TokenmillError('cuda_error'), never an abort. The matmul
// paths are in cuda-matmul.ts and the other ops in cuda-backend.ts, each a subclass of the one before.
import type { BackendMemoryStats, HostData, Tensor } from '../backend.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, isFloatDType, type DType } from '../dtype.js';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { loadCudaAddon, type CudaContextNative } from '../native.js';
import { CudaTensor, toCudaError } from './cuda-tensor.js';
import { probeCuda } from './cuda-probe.js';
import { configuredCublasLtPath } from './cuda-config.js';

export interface CudaBackendOptions {
  readonly deviceIndex?: number;
  /** Activation / KV dtype on the device (default bf16; the CLI maps TOKENMILL_CUDA_DTYPE here). */
  readonly dtype?: 'bf16' | 'f16' | 'f32';
  /** Expose `graphs` (CUDA graphs) when the addon has them (default true; the CLI maps TOKENMILL_CUDA_GRAPHS=0 to false). */
  readonly cudaGraphs?: boolean;
  /**
   * Expose matmulGgml / embeddingGgml (native/cuda/gemm_ggml.cu), so GGUF block weights (Q4_0 .. Q6_K)
   * load and run as stored. Default false: such a model is refused on CUDA (use --device cpu), as
   * before the kernels existed, until they have passed the GPU suite on a device. The CLI maps
   * TOKENMILL_CUDA_GGML=1 here.
   */
  readonly ggmlKernels?: boolean;
}

export abstract class CudaMemory {
  readonly computeDType: DType;
  protected readonly ctx: CudaContextNative;
  private allocatedBytes = 0;
  private numTensors = 0;
  protected disposed = false;

  constructor(opts: CudaBackendOptions = {}) {
    const { addon, reason } = loadCudaAddon();
    if (addon === null) throw new TokenmillError('backend_unavailable', `cuda: ${reason}`);
    this.computeDType = opts.dtype ?? 'bf16';
    const probe = probeCuda();
    if (!probe.available) throw new TokenmillError('backend_unavailable', `cuda: ${probe.reason}`);
    const index = opts.deviceIndex ?? 0;
    if (!Number.isInteger(index) || index < 0 || index >= probe.devices.length) {
      throw new TokenmillError('invalid_argument', `cuda: device index ${index} outside 0..${probe.devices.length - 1}`);
    }
    try {
      this.ctx = new addon.CudaContext(index, 32 << 20, configuredCublasLtPath());
    } catch (e) {
      throw toCudaError(e);
    }
  }

  /** cuBLASLt loaded, multiprocessor count, bytes held in the block cache. */
  info(): { cublasLt: boolean; numSms: number; device: number; cachedBytes: number } {
    return this.ctx.info();
  }

  /** Free and total device memory as the driver sees it (whole device, all processes). */
  deviceMemory(): { freeBytes: number; totalBytes: number } {
    const [freeBytes, totalBytes] = this.call(() => this.ctx.memInfo());
    return { freeBytes, totalBytes };
  }

  protected call<T>(fn: () => T): T {
    if (this.disposed) throw new TokenmillError('cuda_error', 'the CUDA backend was disposed');
    try {
      return fn();
    } catch (e) {
      throw toCudaError(e);
    }
  }

  protected t(x: Tensor, what: string): CudaTensor {
    invariant(x instanceof CudaTensor && x.owner === this, () => `${what}: tensor does not belong to this cuda backend`);
    return x;
  }

  protected float(x: Tensor, what: string, dtype: DType = this.computeDType): CudaTensor {
    const c = this.t(x, what);
    invariant(c.dtype === dtype, () => `${what}: dtype ${c.dtype}, expected ${dtype}`);
    return c;
  }
  // ------------------------------------------------------------------------------------ memory
  alloc(shape: readonly number[], dtype: DType): Tensor {
    invariant(
      shape.every((d) => Number.isInteger(d) && d >= 0),
      () => `alloc: bad shape [${shape.join(', ')}]`,
    );
    const bytes = numelOf(shape) * DTYPE_BYTES[dtype];
    const ptr = this.call(() => this.ctx.malloc(bytes));
    this.allocatedBytes += bytes;
    this.numTensors++;
    return new CudaTensor(this, [...shape], dtype, ptr, null);
  }

  upload(dst: Tensor, src: HostData, dstOffset = 0): void {
    const d = this.t(dst, 'upload');
    invariant(
      dstOffset >= 0 && dstOffset + src.length <= d.numel,
      () => `upload: ${src.length} elements at ${dstOffset} exceed ${d.numel}`,
    );
    if (src instanceof Int32Array) invariant(d.dtype === 'i32', 'upload: Int32Array needs an i32 tensor');
    else if (src instanceof Uint16Array) invariant(d.dtype === 'f16' || d.dtype === 'bf16', 'upload: Uint16Array needs an f16/bf16 tensor');
    else if (src instanceof Float32Array) invariant(isFloatDType(d.dtype), 'upload: Float32Array needs a float tensor');
    else invariant((d.dtype as string) === 'i8', 'upload: Int8Array needs an i8 tensor'); // raw bytes
    if (src.length === 0) return;
    this.call(() => this.ctx.upload(d.ptr, d.code, src, dstOffset));
  }

  view(t: Tensor, shape: readonly number[], offset = 0): Tensor {
    const c = this.t(t, 'view');
    const n = numelOf(shape);
    invariant(offset >= 0 && offset + n <= c.numel, () => `view: [${shape.join(', ')}] at ${offset} exceeds ${c.numel} elements`);
    return new CudaTensor(this, [...shape], c.dtype, c.ptr + offset * DTYPE_BYTES[c.dtype], c.base ?? c);
  }

  async read(t: Tensor): Promise<Float32Array> {
    const c = this.t(t, 'read');
    invariant(isFloatDType(c.dtype), 'read: use readInt32 for i32 tensors');
    try {
      return (await this.call(() => this.ctx.read(c.ptr, c.code, c.numel))) as Float32Array;
    } catch (e) {
      throw toCudaError(e);
    }
  }

  async readInt32(t: Tensor): Promise<Int32Array> {
    const c = this.t(t, 'readInt32');
    invariant(c.dtype === 'i32', 'readInt32: tensor is not i32');
    try {
      return (await this.call(() => this.ctx.read(c.ptr, c.code, c.numel))) as Int32Array;
    } catch (e) {
      throw toCudaError(e);
    }
  }

  free(t: Tensor): void {
    const c = this.t(t, 'free');
    invariant(c.base === null, 'free: cannot free a view');
    this.call(() => this.ctx.free(c.ptr));
    this.allocatedBytes -= c.sizeBytes;
    this.numTensors--;
  }

  async synchronize(): Promise<void> {
    try {
      await this.call(() => this.ctx.read(0, 0, 0));
    } catch (e) {
      throw toCudaError(e);
    }
  }

  memoryStats(): BackendMemoryStats {
    return { allocatedBytes: this.allocatedBytes, numTensors: this.numTensors };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      this.ctx.dispose();
    } catch (e) {
      throw toCudaError(e);
    }
    this.allocatedBytes = 0;
    this.numTensors = 0;
  }
}
