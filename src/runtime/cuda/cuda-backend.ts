// Backend over the native CUDA kernels: one device context (stream, cuBLASLt, block cache) per
// backend. Ops validate shapes here, then enqueue one native call each; nothing synchronises except
// read*() and synchronize(). CUDA failures surface as TokenmillError('cuda_error'), never an abort.
// Extra, CUDA-only: sample() (device-side sampling, see cuda-sampler.ts), matmul path control and
// device memory figures for tests. `graphs` (CUDA graphs, cuda-graphs.ts) when the addon has them and
// the cudaGraphs option is not false.
import type {
  AttentionMetadata,
  Backend,
  BackendGraphs,
  BackendMemoryStats,
  DeviceSampleRow,
  HostData,
  KvLayer,
  Tensor,
} from '../backend.js';
import { numelOf } from '../backend.js';
import { DTYPE_BYTES, isFloatDType, type DType } from '../dtype.js';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { loadCudaAddon, type CudaContextNative } from '../native.js';
import { CudaTensor, DTYPE_CODE, toCudaError } from './cuda-tensor.js';
import { CudaGraphs, hasGraphNative } from './cuda-graphs.js';
import { sampleOnDevice, type SamplerScratch } from './cuda-sampler.js';
import { cudaProbeReason, cudaVersionString } from './cuda-probe-reason.js';
import { configuredCublasLtPath } from './cuda-config.js';
import { ggmlEmbeddingCall, ggmlMatmulCall } from './cuda-ggml.js';
import type { GgmlQuantType } from '../ggml-format.js';

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

export interface CudaProbe {
  readonly available: boolean;
  /** Why not, when unavailable (no addon built, no driver, no device...). */
  readonly reason: string;
  readonly devices: readonly {
    name: string;
    computeCapability: string;
    totalMemoryBytes: number;
    freeMemoryBytes: number;
    bf16: boolean;
  }[];
  readonly driverVersion: string | null;
  readonly runtimeVersion: string | null;
  readonly cublasLt: boolean;
}

export function probeCuda(): CudaProbe {
  const { addon, reason } = loadCudaAddon();
  if (addon === null) return { available: false, reason, devices: [], driverVersion: null, runtimeVersion: null, cublasLt: false };
  try {
    const p = addon.probe(configuredCublasLtPath());
    return {
      available: p.ok,
      reason: p.ok
        ? `${p.devices.length} device(s)${p.cublasLt ? '' : `; cuBLASLt unavailable (${p.cublasLtReason}), own GEMM used`}`
        : cudaProbeReason(p.reason, p.driverVersion, p.runtimeVersion),
      devices: p.devices.map((d) => ({
        name: d.name,
        computeCapability: d.computeCapability,
        totalMemoryBytes: d.totalMemoryBytes,
        freeMemoryBytes: d.freeMemoryBytes,
        bf16: d.bf16,
      })),
      driverVersion: cudaVersionString(p.driverVersion),
      runtimeVersion: cudaVersionString(p.runtimeVersion),
      cublasLt: p.cublasLt,
    };
  } catch (e) {
    return {
      available: false,
      reason: `CUDA probe failed: ${e instanceof Error ? e.message : String(e)}`,
      devices: [],
      driverVersion: null,
      runtimeVersion: null,
      cublasLt: false,
    };
  }
}

export type MatmulMode = 'auto' | 'own' | 'cublaslt';
const MATMUL_MODE_CODE: Record<MatmulMode, number> = { auto: 0, own: 1, cublaslt: 2 };

export class CudaBackend implements Backend {
  readonly name = 'cuda';
  readonly computeDType: DType;
  /** Path the last matmul took ('gemv' | 'tiled' | 'cublaslt'), for tests and benches. */
  lastMatmulPath = '';
  matmulMode: MatmulMode = 'auto';
  private readonly ctx: CudaContextNative;
  private allocatedBytes = 0;
  private numTensors = 0;
  private disposed = false;
  readonly samplerScratch: SamplerScratch = { tensors: new Map() };
  private cudaGraphs: CudaGraphs | null = null;
  readonly graphs?: BackendGraphs;
  /** The optional fused op (Backend.ropeKvWriteQkv), when the addon has it. */
  readonly ropeKvWriteQkv?: (qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor) => void;
  /** Weight-only int8 matmul (Backend.matmulQ8), when the addon has it. NOT YET RUN ON A GPU. */
  readonly matmulQ8?: (out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null) => void;
  /**
   * Grammar masking on the device (Backend.applyTokenBitmask), when the addon has it: one pinned
   * staging buffer and one async copy per call. NOT YET RUN ON A GPU.
   */
  readonly applyTokenBitmask?: (logits: Tensor, packed: Int32Array, numMasked: number, words: number) => void;
  /** ggml block-weight ops (Backend.matmulGgml / embeddingGgml), only with the ggmlKernels option. NOT YET RUN ON A GPU. */
  readonly matmulGgml?: (out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null) => void;
  readonly embeddingGgml?: (out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor) => void;
  /** Scratch for dequantized weights (T > GEMV tokens), grown to the largest int8 weight seen. */
  private q8Scratch: CudaTensor | null = null;

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
    if (hasGraphNative(this.ctx) && opts.cudaGraphs !== false)
      this.graphs = this.cudaGraphs = new CudaGraphs(this.ctx, () => !this.disposed);
    if (typeof this.ctx.ropeKvWriteQkv === 'function') this.ropeKvWriteQkv = (...a) => this.fusedRopeKvWriteQkv(...a);
    if (typeof this.ctx.applyTokenBitmask === 'function') this.applyTokenBitmask = (...a) => this.tokenBitmask(...a);
    if (typeof this.ctx.matmulQ8 === 'function' && typeof this.ctx.dequantQ8 === 'function')
      this.matmulQ8 = (...a) => this.int8Matmul(...a);
    if (opts.ggmlKernels === true && typeof this.ctx.matmulGgml === 'function' && typeof this.ctx.embeddingGgml === 'function') {
      this.matmulGgml = (...a) => this.ggmlMatmul(...a);
      this.embeddingGgml = (...a) => this.ggmlEmbedding(...a);
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

  private call<T>(fn: () => T): T {
    if (this.disposed) throw new TokenmillError('cuda_error', 'the CUDA backend was disposed');
    try {
      return fn();
    } catch (e) {
      throw toCudaError(e);
    }
  }

  private t(x: Tensor, what: string): CudaTensor {
    invariant(x instanceof CudaTensor && x.owner === this, () => `${what}: tensor does not belong to this cuda backend`);
    return x;
  }

  private float(x: Tensor, what: string, dtype: DType = this.computeDType): CudaTensor {
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
    this.graphs?.clear();
    this.q8Scratch = null; // freed with the context
    this.disposed = true;
    try {
      this.ctx.dispose();
    } catch (e) {
      throw toCudaError(e);
    }
    this.allocatedBytes = 0;
    this.numTensors = 0;
  }

  // --------------------------------------------------------------------------------------- ops
  embedding(out: Tensor, table: Tensor, ids: Tensor): void {
    const o = this.float(out, 'embedding out'),
      tb = this.t(table, 'embedding table'),
      i = this.float(ids, 'embedding ids', 'i32');
    invariant(isFloatDType(tb.dtype) && tb.shape.length === 2 && o.shape[1] === tb.shape[1] && o.shape[0] === i.numel, 'embedding: shapes');
    this.call(() => this.ctx.gather(o.ptr, o.code, tb.ptr, tb.code, i.ptr, i.numel, tb.shape[0]!, tb.shape[1]!));
  }

  rmsnorm(out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    const o = this.float(out, 'rmsnorm out'),
      xx = this.float(x, 'rmsnorm x'),
      w = this.t(weight, 'rmsnorm weight');
    const cols = xx.shape[xx.shape.length - 1]!;
    invariant(o.numel === xx.numel && w.numel === cols && isFloatDType(w.dtype), 'rmsnorm: shapes');
    this.call(() => this.ctx.rmsnorm(o.ptr, xx.ptr, w.ptr, o.code, w.code, xx.numel / cols, cols, eps));
  }

  addRmsnorm(out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number): void {
    const o = this.float(out, 'addRmsnorm out'),
      r = this.float(residual, 'addRmsnorm residual');
    const xx = this.float(x, 'addRmsnorm x'),
      w = this.t(weight, 'addRmsnorm weight');
    const cols = xx.shape[xx.shape.length - 1]!;
    invariant(o.numel === xx.numel && r.numel === xx.numel && w.numel === cols && isFloatDType(w.dtype), 'addRmsnorm: shapes');
    invariant(o.ptr !== r.ptr, 'addRmsnorm: out may not alias residual');
    this.call(() => this.ctx.addRmsnorm(o.ptr, r.ptr, xx.ptr, w.ptr, o.code, w.code, xx.numel / cols, cols, eps));
  }

  matmul(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null): void {
    const xx = this.float(x, 'matmul x'),
      ww = this.t(w, 'matmul w'),
      o = this.t(out, 'matmul out');
    const K = xx.shape[xx.shape.length - 1]!,
      T = xx.numel / K,
      N = ww.shape[0]!;
    invariant(ww.shape.length === 2 && ww.shape[1] === K && isFloatDType(ww.dtype), 'matmul: w must be [N, K]');
    invariant(
      o.numel === T * N && (o.dtype === this.computeDType || o.dtype === 'f32'),
      'matmul: out must be [T, N] in computeDType or f32',
    );
    const b = bias === null ? null : this.t(bias, 'matmul bias');
    invariant(b === null || (b.numel === N && isFloatDType(b.dtype)), 'matmul: bias must be [N]');
    this.lastMatmulPath = this.call(() =>
      this.ctx.matmul(
        o.ptr,
        o.code,
        xx.ptr,
        xx.code,
        ww.ptr,
        ww.code,
        b?.ptr ?? 0,
        b?.code ?? 0,
        T,
        N,
        K,
        MATMUL_MODE_CODE[this.matmulMode],
      ),
    );
  }

  /**
   * out = scales * (x . wq^T) (+ bias). T <= 8: the int8 GEMV (dequantized in registers). Larger T:
   * dequantize wq into a computeDType scratch and run matmul() over it (cuBLASLt), or the int8 tiled
   * kernel while a graph is being captured and the scratch is too small (no alloc under capture).
   */
  private int8Matmul(out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null): void {
    const xx = this.float(x, 'matmulQ8 x'),
      w = this.float(wq, 'matmulQ8 wq', 'i8'),
      s = this.float(scales, 'matmulQ8 scales', 'f32');
    const o = this.t(out, 'matmulQ8 out');
    const K = xx.shape[xx.shape.length - 1]!,
      T = xx.numel / K,
      N = w.shape[0]!;
    invariant(w.shape.length === 2 && w.shape[1] === K && s.numel === N, 'matmulQ8: wq must be [N, K] and scales [N]');
    invariant(
      o.numel === T * N && (o.dtype === this.computeDType || o.dtype === 'f32'),
      'matmulQ8: out must be [T, N] in computeDType or f32',
    );
    const b = bias === null ? null : this.t(bias, 'matmulQ8 bias');
    invariant(b === null || (b.numel === N && isFloatDType(b.dtype)), 'matmulQ8: bias must be [N]');
    const capturing = (this.graphs as CudaGraphs | undefined)?.capturing === true;
    if (T > 8 && (this.q8Scratch === null || this.q8Scratch.numel < N * K) && !capturing) {
      // Outside memoryStats (a backend-internal buffer, like the attention workspace).
      if (this.q8Scratch !== null) this.call(() => this.ctx.free(this.q8Scratch!.ptr));
      this.q8Scratch = null;
      const ptr = this.call(() => this.ctx.malloc(N * K * DTYPE_BYTES[this.computeDType]));
      this.q8Scratch = new CudaTensor(this, [N * K], this.computeDType, ptr, null);
    }
    const scratch = this.q8Scratch;
    if (T <= 8 || scratch === null || scratch.numel < N * K) {
      this.lastMatmulPath = this.call(() =>
        this.ctx.matmulQ8!(o.ptr, o.code, xx.ptr, xx.code, w.ptr, s.ptr, b?.ptr ?? 0, b?.code ?? 0, T, N, K),
      );
      return;
    }
    const wd = this.view(scratch, [N, K]);
    this.call(() => this.ctx.dequantQ8!(scratch.ptr, scratch.code, w.ptr, s.ptr, N, K));
    this.matmul(out, x, wd, bias);
  }

  /** x quantized per 32 into the context's scratch, then the ggml GEMV (T <= 8) or its token-tiled form. */
  private ggmlMatmul(out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null): void {
    const a = ggmlMatmulCall(this, this.computeDType, out, x, w, type, bias);
    this.lastMatmulPath = this.call(() =>
      this.ctx.matmulGgml!(
        a.out.ptr,
        a.out.code,
        a.x.ptr,
        a.x.code,
        a.w.ptr,
        a.type,
        a.rowBytes,
        a.bias?.ptr ?? 0,
        a.bias?.code ?? 0,
        a.T,
        a.N,
        a.K,
      ),
    );
  }

  private ggmlEmbedding(out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor): void {
    const a = ggmlEmbeddingCall(this, this.computeDType, out, w, type, ids);
    if (a.T === 0) return;
    this.call(() => this.ctx.embeddingGgml!(a.out.ptr, a.out.code, a.w.ptr, a.type, a.rowBytes, a.ids.ptr, a.T, a.V, a.K));
  }

  rope(q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor): void {
    const qq = this.float(q, 'rope q'),
      kk = this.float(k, 'rope k'),
      p = this.float(positions, 'rope positions', 'i32');
    const f = this.float(invFreq, 'rope invFreq', 'f32');
    invariant(qq.shape.length === 3 && kk.shape.length === 3, 'rope: q, k must be [T, H, Dh]');
    const [T, H, Dh] = qq.shape as [number, number, number];
    invariant(kk.shape[0] === T && kk.shape[2] === Dh && p.numel === T && f.numel === Dh / 2 && Dh % 2 === 0, 'rope: shapes');
    this.call(() => this.ctx.rope(qq.ptr, kk.ptr, qq.code, p.ptr, f.ptr, T, H, kk.shape[1]!, Dh));
  }

  kvWrite(cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor): void {
    const kc = this.float(cache.k, 'kvWrite cache.k'),
      vc = this.float(cache.v, 'kvWrite cache.v');
    const kk = this.float(k, 'kvWrite k'),
      vv = this.float(v, 'kvWrite v'),
      s = this.float(slotMapping, 'kvWrite slots', 'i32');
    const [nb, bs, hkv, dh] = kc.shape as [number, number, number, number];
    const row = hkv * dh;
    invariant(kc.shape.length === 4 && vc.numel === kc.numel && kk.numel === s.numel * row && vv.numel === kk.numel, 'kvWrite: shapes');
    this.call(() => this.ctx.kvWrite(kc.ptr, vc.ptr, kk.ptr, vv.ptr, kc.code, s.ptr, s.numel, row, nb * bs));
  }

  private fusedRopeKvWriteQkv(qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor): void {
    const o = this.float(qOut, 'ropeKvWriteQkv qOut'),
      x = this.float(qkv, 'ropeKvWriteQkv qkv');
    const kc = this.float(cache.k, 'ropeKvWriteQkv cache.k'),
      vc = this.float(cache.v, 'ropeKvWriteQkv cache.v');
    const p = this.float(positions, 'ropeKvWriteQkv positions', 'i32'),
      f = this.float(invFreq, 'ropeKvWriteQkv invFreq', 'f32');
    const s = this.float(slotMapping, 'ropeKvWriteQkv slots', 'i32');
    invariant(
      o.shape.length === 3 && kc.shape.length === 4 && vc.numel === kc.numel,
      'ropeKvWriteQkv: qOut [T, H, Dh], caches [NB, BS, Hkv, Dh]',
    );
    const [T, H, Dh] = o.shape as [number, number, number];
    const [nb, bs, hkv, dh] = kc.shape as [number, number, number, number];
    invariant(
      dh === Dh && Dh % 2 === 0 && x.numel === T * (H + 2 * hkv) * Dh && p.numel === T && s.numel === T && f.numel === Dh / 2,
      'ropeKvWriteQkv: shapes',
    );
    invariant(o.ptr !== x.ptr, 'ropeKvWriteQkv: qOut may not alias qkv');
    this.call(() => this.ctx.ropeKvWriteQkv!(o.ptr, x.ptr, kc.ptr, vc.ptr, o.code, p.ptr, f.ptr, s.ptr, T, H, hkv, Dh, nb * bs));
  }

  attention(out: Tensor, q: Tensor, cache: KvLayer, meta: AttentionMetadata, scale: number, slidingWindow: number): void {
    const o = this.float(out, 'attention out'),
      qq = this.float(q, 'attention q');
    const kc = this.float(cache.k, 'attention cache.k'),
      vc = this.float(cache.v, 'attention cache.v');
    const qsl = this.float(meta.queryStartLoc, 'attention queryStartLoc', 'i32'),
      sl = this.float(meta.seqLens, 'attention seqLens', 'i32');
    const bt = this.float(meta.blockTables, 'attention blockTables', 'i32');
    invariant(qq.shape.length === 3 && o.numel === qq.numel, 'attention: q/out must be [T, H, Dh]');
    const [T, H, Dh] = qq.shape as [number, number, number];
    const [nb, bs, hkv, dh] = kc.shape as [number, number, number, number];
    invariant(dh === Dh && H % hkv === 0 && Dh <= 256, 'attention: head shapes');
    invariant(
      qsl.numel === meta.numSeqs + 1 && sl.numel === meta.numSeqs && bt.shape.length === 2 && bt.shape[0]! >= meta.numSeqs,
      'attention: metadata shapes',
    );
    this.call(() =>
      this.ctx.attention(
        o.ptr,
        qq.ptr,
        kc.ptr,
        vc.ptr,
        qsl.ptr,
        sl.ptr,
        bt.ptr,
        o.code,
        T,
        meta.numSeqs,
        H,
        hkv,
        Dh,
        bs,
        bt.shape[1]!,
        meta.maxQueryLen,
        meta.maxSeqLen,
        slidingWindow,
        nb,
        scale,
        this.cudaGraphs?.capturing === true ? 1 : 0,
      ),
    );
  }

  siluMul(out: Tensor, gateUp: Tensor): void {
    const o = this.float(out, 'siluMul out'),
      g = this.float(gateUp, 'siluMul gateUp');
    const I = o.shape[o.shape.length - 1]!;
    invariant(g.numel === 2 * o.numel && g.shape[g.shape.length - 1] === 2 * I, 'siluMul: shapes');
    this.call(() => this.ctx.siluMul(o.ptr, g.ptr, o.code, o.numel / I, I));
  }

  gatherRows(out: Tensor, x: Tensor, rows: Tensor): void {
    const o = this.t(out, 'gatherRows out'),
      xx = this.t(x, 'gatherRows x'),
      r = this.float(rows, 'gatherRows rows', 'i32');
    const D = xx.shape[xx.shape.length - 1]!;
    invariant(isFloatDType(o.dtype) && isFloatDType(xx.dtype) && o.numel === r.numel * D, 'gatherRows: shapes');
    this.call(() => this.ctx.gather(o.ptr, o.code, xx.ptr, xx.code, r.ptr, r.numel, xx.numel / D, D));
  }

  argmax(out: Tensor, logits: Tensor): void {
    const o = this.float(out, 'argmax out', 'i32'),
      l = this.float(logits, 'argmax logits', 'f32');
    const V = l.shape[l.shape.length - 1]!;
    invariant(o.numel * V === l.numel, 'argmax: shapes');
    this.call(() => this.ctx.argmax(o.ptr, l.ptr, o.numel, V));
  }

  /**
   * CUDA-only: sample one token per row of logits f32 [S, V] into out i32 [S] on the device
   * (penalties, temperature, top-k, top-p, min-p; temperature 0 = argmax). Only ids cross to the host.
   */
  sample(out: Tensor, logits: Tensor, rows: readonly DeviceSampleRow[]): void {
    const o = this.float(out, 'sample out', 'i32'),
      l = this.float(logits, 'sample logits', 'f32');
    const V = l.shape[l.shape.length - 1]!;
    invariant(o.numel === rows.length && l.numel === rows.length * V, 'sample: shapes');
    this.call(() => sampleOnDevice(this, this.ctx, o, l, V, rows));
  }

  private tokenBitmask(logits: Tensor, packed: Int32Array, numMasked: number, words: number): void {
    const l = this.float(logits, 'applyTokenBitmask logits', 'f32');
    const counts = Number.isInteger(numMasked) && numMasked >= 0 && Number.isInteger(words) && words >= 1;
    invariant(l.shape.length === 2 && counts, 'applyTokenBitmask: shapes');
    const n = packed.length;
    invariant(n === numMasked * (words + 1), () => `applyTokenBitmask: ${n} words for ${numMasked} x (${words} + 1)`);
    const [S, V] = l.shape as [number, number];
    for (let m = 0; m < numMasked; m++) {
      invariant(packed[m]! >= 0 && packed[m]! < S, () => `applyTokenBitmask: row ${packed[m]} outside [0, ${S})`);
    }
    if (numMasked === 0) return;
    this.call(() => this.ctx.applyTokenBitmask!(l.ptr, packed, numMasked, V, words));
  }
}

export function createCudaBackend(opts: CudaBackendOptions = {}): CudaBackend {
  return new CudaBackend(opts);
}

export type { DeviceSampleRow } from '../backend.js';
export { DTYPE_CODE };
