// The CUDA backend's matmul paths: the float matmul (own GEMV / tiled kernels or cuBLASLt, chosen
// per call unless matmulMode forces one; lastMatmulPath says which ran) and the weight-only int8
// matmul, which dequantizes into a scratch for large T; the ggml block-weight ops (matmulGgml,
// embeddingGgml) only with the ggmlKernels option. The other ops are in cuda-backend.ts.
import type { Tensor } from '../backend.js';
import { DTYPE_BYTES, isFloatDType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { CudaTensor } from './cuda-tensor.js';
import { CudaMemory, type CudaBackendOptions } from './cuda-memory.js';
import { ggmlEmbeddingCall, ggmlMatmulCall } from './cuda-ggml.js';
import type { GgmlQuantType } from '../ggml-format.js';

export type MatmulMode = 'auto' | 'own' | 'cublaslt';
const MATMUL_MODE_CODE: Record<MatmulMode, number> = { auto: 0, own: 1, cublaslt: 2 };

export abstract class CudaMatmul extends CudaMemory {
  /** Path the last matmul took ('gemv' | 'tiled' | 'cublaslt'), for tests and benches. */
  lastMatmulPath = '';
  matmulMode: MatmulMode = 'auto';
  /** Weight-only int8 matmul (Backend.matmulQ8), when the addon has it. NOT YET RUN ON A GPU. */
  readonly matmulQ8?: (out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null) => void;
  /** ggml block-weight ops (Backend.matmulGgml / embeddingGgml), only with the ggmlKernels option. NOT YET RUN ON A GPU. */
  readonly matmulGgml?: (out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null) => void;
  readonly embeddingGgml?: (out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor) => void;
  /** Scratch for dequantized weights (T > GEMV tokens), grown to the largest int8 weight seen. */
  private q8Scratch: CudaTensor | null = null;

  constructor(opts: CudaBackendOptions) {
    super(opts);
    if (typeof this.ctx.matmulQ8 === 'function' && typeof this.ctx.dequantQ8 === 'function')
      this.matmulQ8 = (...a) => this.int8Matmul(...a);
    if (opts.ggmlKernels === true && typeof this.ctx.matmulGgml === 'function' && typeof this.ctx.embeddingGgml === 'function') {
      this.matmulGgml = (...a) => this.ggmlMatmul(...a);
      this.embeddingGgml = (...a) => this.ggmlEmbedding(...a);
    }
  }

  /** Whether a CUDA graph is being captured (no allocation then). */
  protected abstract capturingGraph(): boolean;

  override dispose(): void {
    if (this.disposed) return;
    this.q8Scratch = null; // freed with the context
    super.dispose();
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
    const capturing = this.capturingGraph();
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
}
