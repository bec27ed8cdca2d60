// Reference ops on ggml-quantized weights (Backend.matmulGgml / embeddingGgml): the executable spec
// the CPU and CUDA kernels are checked against. Weights are i8 tensors of raw block bytes [N, rowBytes].
// matmulGgml quantizes the activations as llama.cpp does for its integer dot products, here one scheme
// for every weight type: each row of x in groups of 32, dx = f32(max|x| / 127), q = rne(f32(x * f32(1 /
// dx))) in -127..127 (dx = 0: q = 0). Each 32-weight group g of a weight row contributes
//   dx_g * (sLo_g * sum_{i<16} qw_i qx_i + sHi_g * sum_{i>=16} qw_i qx_i + m_g * sum_i qx_i)
// where qw are the block's integer codes (offsets folded in: Q4_0 nibble - 8, Q5_0 - 16, Q6_K - 32)
// and sLo/sHi/m the f32 scales and min of the weights in that group (ggmlGroups below). The integer
// sums are exact; the reference adds the contributions in f64, kernels in f32 (tolerance by K).
import type { Tensor } from '../backend.js';
import { f16ToF32 } from '../dtype.js';
import { GGML_BLOCK, ggmlRowElems, type GgmlQuantType } from '../ggml-format.js';
import { invariant } from '../../util/invariant.js';
import { kScaleMin, dequantizeRow } from './ggml-dequant.js';
import { ANY_FLOAT, F32, I32, f32Window, noAlias, toF64, toInts, type RefContext, type RefTensor } from './ref-tensor.js';

const fr = Math.fround;
export const ACT_GROUP = 32;

function rne(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Activation quantization of one row (length a multiple of 32): codes and one scale per group. */
export function quantizeActivationRow(x: Float32Array | Float64Array, off: number, K: number): { q: Int8Array; d: Float32Array } {
  const q = new Int8Array(K);
  const d = new Float32Array(K / ACT_GROUP);
  for (let g = 0; g < K / ACT_GROUP; g++) {
    let amax = 0;
    for (let i = 0; i < ACT_GROUP; i++) amax = Math.max(amax, Math.abs(fr(x[off + g * ACT_GROUP + i]!)));
    const dx = fr(amax / 127);
    const id = dx !== 0 ? fr(1 / dx) : 0;
    d[g] = dx;
    for (let i = 0; i < ACT_GROUP; i++) {
      const v = rne(fr(fr(x[off + g * ACT_GROUP + i]!) * id));
      q[g * ACT_GROUP + i] = v > 127 ? 127 : v < -127 ? -127 : v;
    }
  }
  return { q, d };
}

/** One 32-weight group of a row: integer codes and its scales/min (see the header). */
export interface GgmlGroup {
  readonly q: Int32Array;
  sLo: number;
  sHi: number;
  m: number;
}

const f16At = (b: Uint8Array, o: number): number => f16ToF32(b[o]! | (b[o + 1]! << 8));

/** Decode group g (0 .. blockElems/32 - 1) of the block at byte offset o into `out`. */
export function ggmlGroup(type: GgmlQuantType, b: Uint8Array, o: number, g: number, out: GgmlGroup): void {
  const q = out.q;
  switch (type) {
    case 'Q8_0':
      for (let i = 0; i < 32; i++) q[i] = (b[o + 2 + i]! << 24) >> 24;
      out.sLo = out.sHi = f16At(b, o);
      out.m = 0;
      return;
    case 'Q4_0':
    case 'Q4_1': {
      const one = type === 'Q4_1',
        qs = o + (one ? 4 : 2),
        off = one ? 0 : 8;
      for (let i = 0; i < 16; i++) {
        q[i] = (b[qs + i]! & 0xf) - off;
        q[i + 16] = (b[qs + i]! >> 4) - off;
      }
      out.sLo = out.sHi = f16At(b, o);
      out.m = one ? f16At(b, o + 2) : 0;
      return;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const one = type === 'Q5_1',
        qs = o + (one ? 8 : 6),
        off = one ? 0 : 16;
      const hb = o + (one ? 4 : 2);
      const qh = (b[hb]! | (b[hb + 1]! << 8) | (b[hb + 2]! << 16) | (b[hb + 3]! << 24)) >>> 0;
      for (let i = 0; i < 16; i++) {
        q[i] = ((b[qs + i]! & 0xf) | (((qh >>> i) & 1) << 4)) - off;
        q[i + 16] = ((b[qs + i]! >> 4) | (((qh >>> (i + 16)) & 1) << 4)) - off;
      }
      out.sLo = out.sHi = f16At(b, o);
      out.m = one ? f16At(b, o + 2) : 0;
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const five = type === 'Q5_K';
      const qs = o + (five ? 48 : 16) + 32 * (g >> 1),
        shift = (g & 1) * 4;
      for (let i = 0; i < 32; i++) {
        const hi = five ? ((b[o + 16 + i]! >> g) & 1) << 4 : 0;
        q[i] = ((b[qs + i]! >> shift) & 0xf) | hi;
      }
      const [sc, mn] = kScaleMin(b, o + 4, g);
      out.sLo = out.sHi = fr(f16At(b, o) * sc);
      out.m = -fr(f16At(b, o + 2) * mn);
      return;
    }
    case 'Q6_K': {
      // group g covers elements 32g .. 32g+31: half = g >> 2, within the half quarter r = g & 3
      const half = g >> 2,
        r = g & 3;
      const ql = o + 64 * half + (r & 1) * 32,
        qh = o + 128 + 32 * half,
        shift = r >> 1 ? 4 : 0;
      for (let i = 0; i < 32; i++) q[i] = (((b[ql + i]! >> shift) & 0xf) | (((b[qh + i]! >> (2 * r)) & 3) << 4)) - 32;
      const d = f16At(b, o + 208),
        sc = o + 192 + 8 * half + 2 * r;
      out.sLo = fr(d * ((b[sc]! << 24) >> 24));
      out.sHi = fr(d * ((b[sc + 1]! << 24) >> 24));
      out.m = 0;
      return;
    }
  }
}

/** The raw bytes of an i8 weight tensor (from its element offset). */
export function weightBytes(W: RefTensor): Uint8Array {
  const d = W.storage.data as Int8Array;
  invariant(d instanceof Int8Array, 'ggml weight storage is not Int8Array');
  return new Uint8Array(d.buffer, d.byteOffset + W.offset, W.numel);
}

function weightArg(ctx: RefContext, w: Tensor, type: GgmlQuantType): { W: RefTensor; N: number; K: number; rowBytes: number } {
  invariant(GGML_BLOCK[type] !== undefined, () => `unknown ggml type ${String(type)}`);
  const W = ctx.arg(w, 'w', ['i8'], [-1, -1]);
  const [N, rowBytes] = W.shape as [number, number];
  return { W, N, K: ggmlRowElems(type, rowBytes), rowBytes };
}

export function matmulGgml(ctx: RefContext, out: Tensor, x: Tensor, w: Tensor, type: GgmlQuantType, bias: Tensor | null): void {
  const { W, N, K, rowBytes } = weightArg(ctx, w, type);
  const X = ctx.arg(x, 'x', F32, [-1, K]);
  const T = X.shape[0]!;
  const O = ctx.arg(out, 'out', F32, [T, N]);
  const B = bias === null ? null : ctx.arg(bias, 'bias', ANY_FLOAT, [N]);
  noAlias('out', O, B ? { x: X, w: W, bias: B } : { x: X, w: W });
  const xs = toF64(X);
  const bs = B ? toF64(B) : null;
  const bytes = weightBytes(W);
  const f = GGML_BLOCK[type];
  const groupsPerBlock = f.blockElems / ACT_GROUP;
  const acts = Array.from({ length: T }, (_, t) => quantizeActivationRow(xs, t * K, K));
  const g: GgmlGroup = { q: new Int32Array(32), sLo: 0, sHi: 0, m: 0 };
  const o = f32Window(O);
  const acc = new Float64Array(T);
  for (let n = 0; n < N; n++) {
    acc.fill(0);
    for (let blk = 0; blk < K / f.blockElems; blk++) {
      for (let j = 0; j < groupsPerBlock; j++) {
        ggmlGroup(type, bytes, n * rowBytes + blk * f.blockBytes, j, g);
        const k0 = (blk * groupsPerBlock + j) * ACT_GROUP;
        for (let t = 0; t < T; t++) {
          const { q, d } = acts[t]!;
          let lo = 0,
            hi = 0,
            sx = 0;
          for (let i = 0; i < 16; i++) {
            lo += g.q[i]! * q[k0 + i]!;
            sx += q[k0 + i]!;
          }
          for (let i = 16; i < 32; i++) {
            hi += g.q[i]! * q[k0 + i]!;
            sx += q[k0 + i]!;
          }
          acc[t] += d[k0 / ACT_GROUP]! * (g.sLo * lo + g.sHi * hi + g.m * sx);
        }
      }
    }
    for (let t = 0; t < T; t++) o[t * N + n] = bs ? acc[t]! + bs[n]! : acc[t]!;
  }
}

/** out[t, :] = row ids[t] of w, decoded exactly (ggml-dequant.ts). out f32 [T, K], ids i32 [T]. */
export function embeddingGgml(ctx: RefContext, out: Tensor, w: Tensor, type: GgmlQuantType, ids: Tensor): void {
  const { W, N, K, rowBytes } = weightArg(ctx, w, type);
  const I = ctx.arg(ids, 'ids', I32, [-1]);
  const T = I.shape[0]!;
  const O = ctx.arg(out, 'out', F32, [T, K]);
  const idx = toInts(I);
  const bytes = weightBytes(W);
  const o = f32Window(O);
  for (let t = 0; t < T; t++) {
    const id = idx[t]!;
    invariant(id >= 0 && id < N, () => `embeddingGgml: ids[${t}] = ${id} outside [0, ${N})`);
    dequantizeRow(type, bytes, id * rowBytes, K, o, t * K);
  }
}
