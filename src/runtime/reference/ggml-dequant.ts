// The ggml block formats, decoded as the spec (ggml-common.h layouts): each function writes the f32
// values of one row of blocks, with the arithmetic ggml's reference dequantizers do, rounded to f32 at
// each step (Math.fround), so results are bit-exact. Layouts (little-endian, d/dmin/m are f16):
//   Q4_0 [d][qs 16]          w = (nibble - 8) d             low nibbles: j, high nibbles: j + 16
//   Q4_1 [d][m][qs 16]       w = nibble d + m
//   Q5_0 [d][qh u32][qs 16]  w = ((nibble | bit << 4) - 16) d   bit j of qh for j, bit j+16 for j + 16
//   Q5_1 [d][m][qh][qs 16]   w = (nibble | bit << 4) d + m
//   Q8_0 [d][qs i8 32]       w = q d
//   Q4_K [d][dmin][scales 12][qs 128]: 8 sub-blocks of 32, 6-bit scale sc and min m each (packed,
//        kScaleMin); pairs of sub-blocks share 32 bytes (low nibbles the first, high the second);
//        w = (d sc) q - (dmin m)
//   Q5_K [d][dmin][scales 12][qh 32][qs 128]: as Q4_K plus a fifth bit, sub-block s of element l is
//        bit s of qh[l]
//   Q6_K [ql 128][qh 64][scales i8 16][d]: 16 sub-blocks of 16; halves of 128: ql low nibbles give
//        elements 0..63, high nibbles 64..127, qh 2 bits each; w = (d sc) (q - 32)
import { f16ToF32 } from '../dtype.js';
import { GGML_BLOCK, type GgmlQuantType } from '../ggml-format.js';

const fr = Math.fround;

function f16At(b: Uint8Array, o: number): number {
  return f16ToF32(b[o]! | (b[o + 1]! << 8));
}

function u32At(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at q (Q4_K, Q5_K). */
export function kScaleMin(b: Uint8Array, q: number, j: number): [number, number] {
  if (j < 4) return [b[q + j]! & 63, b[q + j + 4]! & 63];
  return [(b[q + j + 4]! & 0xf) | ((b[q + j - 4]! >> 6) << 4), (b[q + j + 4]! >> 4) | ((b[q + j]! >> 6) << 4)];
}

function legacyBlock(type: GgmlQuantType, b: Uint8Array, o: number, y: Float32Array, yo: number): void {
  switch (type) {
    case 'Q8_0': {
      const d = f16At(b, o);
      for (let j = 0; j < 32; j++) y[yo + j] = fr(((b[o + 2 + j]! << 24) >> 24) * d);
      return;
    }
    case 'Q4_0': {
      const d = f16At(b, o);
      for (let j = 0; j < 16; j++) {
        const q = b[o + 2 + j]!;
        y[yo + j] = fr(((q & 0xf) - 8) * d);
        y[yo + j + 16] = fr(((q >> 4) - 8) * d);
      }
      return;
    }
    case 'Q4_1': {
      const d = f16At(b, o),
        m = f16At(b, o + 2);
      for (let j = 0; j < 16; j++) {
        const q = b[o + 4 + j]!;
        y[yo + j] = fr(fr((q & 0xf) * d) + m);
        y[yo + j + 16] = fr(fr((q >> 4) * d) + m);
      }
      return;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const one = type === 'Q5_1';
      const d = f16At(b, o),
        m = one ? f16At(b, o + 2) : 0;
      const qh = u32At(b, o + (one ? 4 : 2));
      const qs = o + (one ? 8 : 6);
      for (let j = 0; j < 16; j++) {
        const q = b[qs + j]!;
        const lo = (q & 0xf) | (((qh >>> j) & 1) << 4);
        const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
        y[yo + j] = one ? fr(fr(lo * d) + m) : fr((lo - 16) * d);
        y[yo + j + 16] = one ? fr(fr(hi * d) + m) : fr((hi - 16) * d);
      }
      return;
    }
    default:
      throw new Error(`not a legacy type: ${type}`);
  }
}

function q45kBlock(five: boolean, b: Uint8Array, o: number, y: Float32Array, yo: number): void {
  const d = f16At(b, o),
    dmin = f16At(b, o + 2);
  const sc = o + 4;
  const qh = o + 16;
  let qs = o + (five ? 48 : 16);
  for (let p = 0; p < 4; p++) {
    // sub-blocks 2p (low nibbles) and 2p + 1 (high nibbles) over the same 32 bytes
    const [s1, m1] = kScaleMin(b, sc, 2 * p);
    const [s2, m2] = kScaleMin(b, sc, 2 * p + 1);
    const d1 = fr(d * s1),
      mm1 = fr(dmin * m1),
      d2 = fr(d * s2),
      mm2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) {
      const h = five ? b[qh + l]! : 0;
      const q1 = (b[qs + l]! & 0xf) + (five && (h >> (2 * p)) & 1 ? 16 : 0);
      const q2 = (b[qs + l]! >> 4) + (five && (h >> (2 * p + 1)) & 1 ? 16 : 0);
      y[yo + 64 * p + l] = fr(fr(d1 * q1) - mm1);
      y[yo + 64 * p + 32 + l] = fr(fr(d2 * q2) - mm2);
    }
    qs += 32;
  }
}

function q6kBlock(b: Uint8Array, o: number, y: Float32Array, yo: number): void {
  const d = f16At(b, o + 208);
  for (let half = 0; half < 2; half++) {
    const ql = o + 64 * half,
      qh = o + 128 + 32 * half,
      sc = o + 192 + 8 * half,
      base = yo + 128 * half;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = b[qh + l]!;
      const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      const s = (k: number): number => (b[sc + is + k]! << 24) >> 24;
      y[base + l] = fr(fr(d * s(0)) * q1);
      y[base + l + 32] = fr(fr(d * s(2)) * q2);
      y[base + l + 64] = fr(fr(d * s(4)) * q3);
      y[base + l + 96] = fr(fr(d * s(6)) * q4);
    }
  }
}

/** Decode one block of `type` at byte offset o into y[yo .. yo + blockElems). */
export function dequantizeBlock(type: GgmlQuantType, b: Uint8Array, o: number, y: Float32Array, yo: number): void {
  if (type === 'Q4_K' || type === 'Q5_K') q45kBlock(type === 'Q5_K', b, o, y, yo);
  else if (type === 'Q6_K') q6kBlock(b, o, y, yo);
  else legacyBlock(type, b, o, y, yo);
}

/** Decode n consecutive weights (a multiple of the block) starting at byte offset o. */
export function dequantizeRow(
  type: GgmlQuantType,
  b: Uint8Array,
  o: number,
  n: number,
  y: Float32Array = new Float32Array(n),
  yo = 0,
): Float32Array {
  const f = GGML_BLOCK[type];
  for (let i = 0; i < n / f.blockElems; i++) dequantizeBlock(type, b, o + i * f.blockBytes, y, yo + i * f.blockElems);
  return y;
}
