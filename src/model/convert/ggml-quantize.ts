// f32 rows -> ggml blocks (the writer side of `convert to-gguf --type`), following the method of
// ggml's reference quantizers: legacy formats from the block's max / min; Q4_K and Q5_K with a
// weighted search over scale candidates per 32-weight sub-block (min folded in), their scales and
// mins packed to 6 bits under one f16 super-scale each; Q6_K with a least-squares signed scale per
// 16 weights, packed to int8 under one f16 scale. Layouts: runtime/reference/ggml-dequant.ts.
// This TS is the reference: quantizeMatrix runs its native twin (native/cpu/ggml_quantize.cpp, the
// same operations in the same order, so the same bytes) on every core when the CPU addon is built,
// which takes a 1B-parameter Q4_K_M conversion from a quarter of an hour to under a minute.
import { availableParallelism } from 'node:os';
import { f32ToF16 } from '../../runtime/dtype.js';
import { loadCpuAddon, type QuantizeIsa } from '../../runtime/native.js';
import { GGML_BLOCK, ggmlRowBytes, type GgmlQuantType } from '../../runtime/ggml-format.js';
import { f16ToF32 } from '../../runtime/dtype.js';

const fr = Math.fround;
/** Round half to even (ggml's nearest_int). */
const nearest = (v: number): number => {
  const f = Math.floor(v),
    d = v - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
};
/** C's (int) cast of a float: toward zero. */
const trunc = Math.trunc;
/** C's roundf: half away from zero. */
const roundAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));
const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

function putF16(b: Uint8Array, o: number, v: number): number {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
  return f16ToF32(h);
}

function legacyBlock(type: GgmlQuantType, x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  let amax = 0,
    max = 0,
    mn = Infinity,
    mx = -Infinity;
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i]!;
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  if (type === 'Q8_0') {
    const d = fr(amax / 127),
      id = d ? fr(1 / d) : 0;
    putF16(b, o, d);
    for (let i = 0; i < 32; i++) b[o + 2 + i] = roundAway(fr(x[xo + i]! * id)) & 0xff;
    return;
  }
  const minType = type === 'Q4_1' || type === 'Q5_1';
  const levels = type === 'Q4_0' || type === 'Q4_1' ? 15 : 31;
  const d = minType ? fr((mx - mn) / levels) : fr(max / (type === 'Q4_0' ? -8 : -16));
  const id = d ? fr(1 / d) : 0;
  putF16(b, o, d);
  if (minType) putF16(b, o + 2, mn);
  const codes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    const v = minType ? fr(fr(x[xo + i]! - mn) * id) + 0.5 : fr(x[xo + i]! * id) + (type === 'Q4_0' ? 8.5 : 16.5);
    codes[i] = Math.min(levels, trunc(fr(v)));
  }
  if (levels === 15) {
    const qs = o + (minType ? 4 : 2);
    for (let j = 0; j < 16; j++) b[qs + j] = codes[j]! | (codes[j + 16]! << 4);
    return;
  }
  const qhAt = o + (minType ? 4 : 2),
    qs = qhAt + 4;
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    b[qs + j] = (codes[j]! & 0xf) | ((codes[j + 16]! & 0xf) << 4);
    qh |= ((codes[j]! >> 4) & 1) << j;
    qh |= ((codes[j + 16]! >> 4) & 1) << (j + 16);
  }
  for (let k = 0; k < 4; k++) b[qhAt + k] = (qh >>> (8 * k)) & 0xff;
}

/**
 * Unsigned codes 0..nmax with scale and min for n weights (weighted least squares over a sweep of
 * candidate scales), as ggml's make_qkx2_quants. Returns [scale, min >= 0]; w ~ scale * L - min.
 */
function scaleMinSearch(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  wt: Float32Array,
  L: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [number, number] {
  let min = x[xo]!,
    max = x[xo]!,
    sumW = 0,
    sumX = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sumW += wt[i]!;
    sumX += wt[i]! * v;
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, 0, n);
    return [0, -min];
  }
  let iscale = nmax / (max - min),
    scale = 1 / iscale,
    best = 0;
  for (let i = 0; i < n; i++) {
    L[i] = clamp(nearest(iscale * (x[xo + i]! - min)), 0, nmax);
    const diff = scale * L[i]! + min - x[xo + i]!;
    best += wt[i]! * diff * diff;
  }
  const aux = new Uint8Array(n);
  for (let s = 0; s <= nstep; s++) {
    iscale = (rmin + rdelta * s + nmax) / (max - min);
    let sumL = 0,
      sumL2 = 0,
      sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearest(iscale * (x[xo + i]! - min)), 0, nmax);
      aux[i] = l;
      sumL += wt[i]! * l;
      sumL2 += wt[i]! * l * l;
      sumXL += wt[i]! * l * x[xo + i]!;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    let thisScale = (sumW * sumXL - sumX * sumL) / D;
    let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    let err = 0;
    for (let i = 0; i < n; i++) {
      const diff = thisScale * aux[i]! + thisMin - x[xo + i]!;
      err += wt[i]! * diff * diff;
    }
    if (err < best) {
      L.set(aux);
      best = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  return [fr(scale), fr(-min)];
}

function kBlock(five: boolean, x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  const nmax = five ? 31 : 15;
  const scales = new Float32Array(8),
    mins = new Float32Array(8);
  const L = new Uint8Array(256),
    sub = new Uint8Array(32),
    wt = new Float32Array(32);
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let i = 0; i < 32; i++) sumX2 += x[xo + 32 * j + i]! ** 2;
    const av = Math.sqrt(sumX2 / 32);
    for (let i = 0; i < 32; i++) wt[i] = av + Math.abs(x[xo + 32 * j + i]!);
    [scales[j], mins[j]] = five
      ? scaleMinSearch(32, nmax, x, xo + 32 * j, wt, sub, -0.5, 0.1, 15)
      : scaleMinSearch(32, nmax, x, xo + 32 * j, wt, sub, -1, 0.1, 20);
  }
  const maxScale = Math.max(...scales),
    maxMin = Math.max(...mins);
  const invS = maxScale > 0 ? 63 / maxScale : 0,
    invM = maxMin > 0 ? 63 / maxMin : 0;
  const sc = o + 4;
  b.fill(0, o, o + GGML_BLOCK[five ? 'Q5_K' : 'Q4_K'].blockBytes);
  const ls = new Uint8Array(8),
    lm = new Uint8Array(8);
  for (let j = 0; j < 8; j++) {
    ls[j] = Math.min(63, nearest(invS * scales[j]!));
    lm[j] = Math.min(63, nearest(invM * mins[j]!));
    if (j < 4) {
      b[sc + j] = ls[j]!;
      b[sc + j + 4] = lm[j]!;
    } else {
      b[sc + j + 4] = (ls[j]! & 0xf) | ((lm[j]! & 0xf) << 4);
      b[sc + j - 4] |= (ls[j]! >> 4) << 6;
      b[sc + j] |= (lm[j]! >> 4) << 6;
    }
  }
  const d = putF16(b, o, maxScale / 63),
    dmin = putF16(b, o + 2, maxMin / 63);
  for (let j = 0; j < 8; j++) {
    const dj = fr(d * ls[j]!),
      mj = fr(dmin * lm[j]!);
    for (let i = 0; i < 32; i++) L[32 * j + i] = dj ? clamp(nearest(fr(x[xo + 32 * j + i]! + mj) / dj), 0, nmax) : 0;
  }
  const qs = o + (five ? 48 : 16);
  for (let p = 0; p < 4; p++) {
    for (let l = 0; l < 32; l++) {
      const a = L[64 * p + l]!,
        c = L[64 * p + 32 + l]!;
      b[qs + 32 * p + l] = (a & 0xf) | ((c & 0xf) << 4);
      if (five) b[o + 16 + l] |= ((a >> 4) << (2 * p)) | ((c >> 4) << (2 * p + 1));
    }
  }
}

/** Signed codes -nmax..nmax-1 and a least-squares scale (x^2 weights), as ggml's make_qx_quants. */
function signedScale(n: number, nmax: number, x: Float32Array, xo: number): number {
  let amax = 0,
    max = 0;
  for (let i = 0; i < n; i++)
    if (Math.abs(x[xo + i]!) > amax) {
      amax = Math.abs(x[xo + i]!);
      max = x[xo + i]!;
    }
  if (amax < 1e-30) return 0;
  let bestScale = 0,
    best = -1;
  for (let s = -9; s <= 9; s++) {
    const iscale = -(nmax + 0.1 * s) / max;
    let sumLX = 0,
      sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!,
        l = clamp(nearest(iscale * v), -nmax, nmax - 1),
        w = v * v;
      sumLX += w * v * l;
      sumL2 += w * l * l;
    }
    if (sumL2 > 0 && (best < 0 || sumLX * sumLX > best * sumL2)) {
      bestScale = sumLX / sumL2;
      best = bestScale * sumLX;
    }
  }
  return fr(bestScale);
}

function q6kBlock(x: Float32Array, xo: number, b: Uint8Array, o: number): void {
  const scales = new Float32Array(16);
  let maxAbs = 0,
    max = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = signedScale(16, 32, x, xo + 16 * j);
    if (Math.abs(scales[j]!) > maxAbs) {
      maxAbs = Math.abs(scales[j]!);
      max = scales[j]!;
    }
  }
  b.fill(0, o, o + 210);
  if (maxAbs === 0) return;
  const iscale = -128 / max;
  const d = putF16(b, o + 208, 1 / iscale);
  const L = new Uint8Array(256);
  for (let j = 0; j < 16; j++) {
    const s = Math.min(127, nearest(iscale * scales[j]!));
    b[o + 192 + j] = s & 0xff;
    const dj = fr(d * s);
    for (let i = 0; i < 16; i++) L[16 * j + i] = dj ? clamp(nearest(x[xo + 16 * j + i]! / dj), -32, 31) + 32 : 32;
  }
  for (let half = 0; half < 2; half++) {
    const ql = o + 64 * half,
      qh = o + 128 + 32 * half,
      e = 128 * half;
    for (let l = 0; l < 32; l++) {
      const q1 = L[e + l]!,
        q2 = L[e + l + 32]!,
        q3 = L[e + l + 64]!,
        q4 = L[e + l + 96]!;
      b[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      b[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      b[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

export interface QuantizeMatrixOptions {
  /** false: the TS reference even where the native quantizer exists (tests compare the two). */
  readonly native?: boolean;
  /** Threads of the native quantizer (default: every core). */
  readonly threads?: number;
  /** The native quantizer's ISA copy (default auto; tests force each). */
  readonly isa?: QuantizeIsa;
}

/**
 * Quantize a [N, K] f32 matrix (row-major) into N rows of `type` blocks: natively where the CPU
 * addon has quantizeGgml, else with the TS reference; both write the same bytes. Non-finite
 * weights and a K that is not a multiple of the type's block throw RangeError.
 */
export function quantizeMatrix(type: GgmlQuantType, x: Float32Array, N: number, K: number, opts: QuantizeMatrixOptions = {}): Uint8Array {
  const f = GGML_BLOCK[type];
  if (!Number.isInteger(N) || N < 0 || !Number.isInteger(K) || K <= 0 || K % f.blockElems !== 0 || x.length !== N * K)
    throw new RangeError(`quantize ${type}: [${N}, ${K}] needs K a multiple of ${f.blockElems} and ${N} x ${K} weights, got ${x.length}`);
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]!)) throw new RangeError(`quantize ${type}: non-finite weight at element ${i}`);
  const native = opts.native === false ? undefined : loadCpuAddon().addon?.quantizeGgml;
  if (native !== undefined && N > 0) return native(f.id, x, N, K, Math.max(1, opts.threads ?? availableParallelism()), opts.isa ?? 'auto');
  return quantizeReference(type, x, N, K);
}

function quantizeReference(type: GgmlQuantType, x: Float32Array, N: number, K: number): Uint8Array {
  const f = GGML_BLOCK[type];
  const rowBytes = ggmlRowBytes(type, K);
  const out = new Uint8Array(N * rowBytes);
  const nb = K / f.blockElems;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < nb; k++) {
      const xo = n * K + k * f.blockElems,
        o = n * rowBytes + k * f.blockBytes;
      if (type === 'Q4_K' || type === 'Q5_K') kBlock(type === 'Q5_K', x, xo, out, o);
      else if (type === 'Q6_K') q6kBlock(x, xo, out, o);
      else legacyBlock(type, x, xo, out, o);
    }
  }
  return out;
}
