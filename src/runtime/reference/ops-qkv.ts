// Reference for the optional fused op ropeKvWriteQkv (the spec), and its composition from the core
// ops for backends without it. qkv [T, (H + 2 Hkv) * Dh] is what one matmul with the concatenated
// q/k/v weights produces: per token row, H query heads, then Hkv key heads, then Hkv value heads.
// Result = rope(q, k) then kvWrite(k, v): bit for bit what the unfused ops give on the same qkv values.
import type { Backend, KvLayer, Tensor } from '../backend.js';
import { invariant } from '../../util/invariant.js';
import { cacheArgs, cacheSetter } from './ops-attention.js';
import { F32, I32, f32Window, floatGetter, noAlias, toF64, toInts, type RefContext } from './ref-tensor.js';

export function ropeKvWriteQkv(
  ctx: RefContext,
  qOut: Tensor,
  qkv: Tensor,
  cache: KvLayer,
  positions: Tensor,
  invFreq: Tensor,
  slotMapping: Tensor,
): void {
  const { K: CK, V: CV } = cacheArgs(ctx, cache);
  const [NB, BS, Hkv, Dh] = CK.shape as [number, number, number, number];
  const Q = ctx.arg(qOut, 'qOut', F32, [-1, -1, Dh]);
  const [T, H] = Q.shape as [number, number];
  invariant(Dh % 2 === 0, () => `ropeKvWriteQkv: head dim ${Dh} is odd`);
  const X = ctx.arg(qkv, 'qkv', F32, [T, (H + 2 * Hkv) * Dh]);
  const P = ctx.arg(positions, 'positions', I32, [T]);
  const F = ctx.arg(invFreq, 'invFreq', F32, [Dh / 2]);
  const S = ctx.arg(slotMapping, 'slotMapping', I32, [T]);
  const inputs = { qkv: X, positions: P, invFreq: F, slotMapping: S };
  noAlias('qOut', Q, { ...inputs, 'cache.k': CK, 'cache.v': CV });
  noAlias('cache.k', CK, { ...inputs, 'cache.v': CV });
  noAlias('cache.v', CV, inputs);
  const x = floatGetter(X);
  const pos = toInts(P);
  const freq = toF64(F);
  const slots = toInts(S);
  const q = f32Window(Q);
  const ck = cacheSetter(CK);
  const cv = cacheSetter(CV);
  const half = Dh / 2;
  const rowIn = (H + 2 * Hkv) * Dh;
  const rowKv = Hkv * Dh;
  const krot = new Float32Array(Dh);
  for (let t = 0; t < T; t++) {
    const slot = slots[t]!;
    invariant(slot < NB * BS, () => `ropeKvWriteQkv: slotMapping[${t}] = ${slot} outside the cache (${NB * BS} slots)`);
    // Rotate a head of qkv row t into dst[base..base+Dh) (rounded to f32 once on store, as rope()).
    const rotateInto = (dst: Float32Array, base: number, src: number): void => {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos[t]! * freq[i]!);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = Math.fround(x(src + i));
        const b = Math.fround(x(src + i + half));
        dst[base + i] = a * c - b * s;
        dst[base + i + half] = b * c + a * s;
      }
    };
    for (let h = 0; h < H; h++) rotateInto(q, (t * H + h) * Dh, t * rowIn + h * Dh);
    if (slot < 0) continue;
    for (let h = 0; h < Hkv; h++) {
      // The rotated key is rounded to f32 first, then to the cache dtype (as rope then kvWrite).
      rotateInto(krot, 0, t * rowIn + (H + h) * Dh);
      for (let d = 0; d < Dh; d++) ck(slot * rowKv + h * Dh + d, krot[d]!);
      for (let d = 0; d < Dh; d++) cv(slot * rowKv + h * Dh + d, x(t * rowIn + (H + Hkv + h) * Dh + d));
    }
  }
}

/** Row indices that de-interleave qkv viewed as [T * (H + 2 Hkv), Dh] into q, k, v head rows. */
export function qkvSplitRows(numTokens: number, numHeads: number, numKvHeads: number): { q: Int32Array; k: Int32Array; v: Int32Array } {
  const G = numHeads + 2 * numKvHeads;
  const q = new Int32Array(numTokens * numHeads);
  const k = new Int32Array(numTokens * numKvHeads);
  const v = new Int32Array(numTokens * numKvHeads);
  for (let t = 0; t < numTokens; t++) {
    for (let h = 0; h < numHeads; h++) q[t * numHeads + h] = t * G + h;
    for (let h = 0; h < numKvHeads; h++) {
      k[t * numKvHeads + h] = t * G + numHeads + h;
      v[t * numKvHeads + h] = t * G + numHeads + numKvHeads + h;
    }
  }
  return { q, k, v };
}

/** Scratch for composeRopeKvWriteQkv: i32 row tensors (from qkvSplitRows, uploaded) and k, v [T, Hkv, Dh]. */
export interface QkvSplitScratch {
  readonly qRows: Tensor;
  readonly kRows: Tensor;
  readonly vRows: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
}

/**
 * ropeKvWriteQkv from core ops (gatherRows x3, rope, kvWrite), for backends without the fused op:
 * same results, more launches. The caller owns the scratch (allocated once per token count).
 */
export function composeRopeKvWriteQkv(
  b: Backend,
  qOut: Tensor,
  qkv: Tensor,
  cache: KvLayer,
  positions: Tensor,
  invFreq: Tensor,
  slotMapping: Tensor,
  scratch: QkvSplitScratch,
): void {
  const [T, H, Dh] = qOut.shape as [number, number, number];
  const rows = b.view(qkv, [qkv.numel / Dh, Dh]);
  b.gatherRows(b.view(qOut, [T * H, Dh]), rows, scratch.qRows);
  b.gatherRows(b.view(scratch.k, [scratch.k.numel / Dh, Dh]), rows, scratch.kRows);
  b.gatherRows(b.view(scratch.v, [scratch.v.numel / Dh, Dh]), rows, scratch.vRows);
  b.rope(qOut, scratch.k, positions, invFreq);
  b.kvWrite(cache, scratch.k, scratch.v, slotMapping);
}
