// Backend over the native CUDA kernels: one device context (stream, cuBLASLt, block cache) per
// backend. Ops validate shapes here, then enqueue one native call each; nothing synchronises except
// read*() and synchronize(). CUDA failures surface as TokenmillError('cuda_error'), never an abort.
// Extra, CUDA-only: sample() (device-side sampling, see cuda-sampler.ts), matmul path control and
// device memory figures for tests. `graphs` (CUDA graphs, cuda-graphs.ts) when the addon has them and
// the cudaGraphs option is not false.
// This file: the layer ops other than matmul, device sampling, graphs and the fused ops; memory and
// tensors are in cuda-memory.ts, the matmul paths in cuda-matmul.ts, the probe in cuda-probe.ts.
import type { AttentionMetadata, Backend, BackendGraphs, DeviceSampleRow, KvLayer, Tensor } from '../backend.js';
import { isFloatDType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { DTYPE_CODE } from './cuda-tensor.js';
import { CudaGraphs, hasGraphNative } from './cuda-graphs.js';
import { sampleOnDevice, type SamplerScratch } from './cuda-sampler.js';
import type { CudaBackendOptions } from './cuda-memory.js';
import { CudaMatmul } from './cuda-matmul.js';

export type { CudaBackendOptions } from './cuda-memory.js';
export { probeCuda, type CudaProbe } from './cuda-probe.js';
export type { MatmulMode } from './cuda-matmul.js';

export class CudaBackend extends CudaMatmul implements Backend {
  readonly name = 'cuda';
  readonly samplerScratch: SamplerScratch = { tensors: new Map() };
  private cudaGraphs: CudaGraphs | null = null;
  readonly graphs?: BackendGraphs;
  /** The optional fused op (Backend.ropeKvWriteQkv), when the addon has it. */
  readonly ropeKvWriteQkv?: (qOut: Tensor, qkv: Tensor, cache: KvLayer, positions: Tensor, invFreq: Tensor, slotMapping: Tensor) => void;
  /**
   * Grammar masking on the device (Backend.applyTokenBitmask), when the addon has it: one pinned
   * staging buffer and one async copy per call. NOT YET RUN ON A GPU.
   */
  readonly applyTokenBitmask?: (logits: Tensor, packed: Int32Array, numMasked: number, words: number) => void;

  constructor(opts: CudaBackendOptions = {}) {
    super(opts);
    if (hasGraphNative(this.ctx) && opts.cudaGraphs !== false)
      this.graphs = this.cudaGraphs = new CudaGraphs(this.ctx, () => !this.disposed);
    if (typeof this.ctx.ropeKvWriteQkv === 'function') this.ropeKvWriteQkv = (...a) => this.fusedRopeKvWriteQkv(...a);
    if (typeof this.ctx.applyTokenBitmask === 'function') this.applyTokenBitmask = (...a) => this.tokenBitmask(...a);
  }

  protected capturingGraph(): boolean {
    return this.cudaGraphs?.capturing === true;
  }

  override dispose(): void {
    if (this.disposed) return;
    this.graphs?.clear();
    super.dispose();
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
