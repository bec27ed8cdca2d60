// Reference paged KV write and paged, varlen, causal grouped-query attention (sliding window
// optional), straight from the AttentionMetadata doc in backend.ts. Softmax and sums in f64.
// Cache tensors: [numBlocks, blockSize, Hkv, Dh]; a slot indexes the flattened [numBlocks * blockSize] axis.
// A cache may be f32 or f16/bf16 (both tensors the same dtype): kvWrite rounds each value to the
// cache dtype (nearest even) and stores its bits; attention reads them back converted exactly.
import type { AttentionMetadata, KvLayer, Tensor } from '../backend.js';
import { f32ToBf16, f32ToF16 } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { ANY_FLOAT, F32, I32, f32Window, floatGetter, noAlias, toInts, type RefContext, type RefTensor } from './ref-tensor.js';

export function cacheArgs(ctx: RefContext, cache: KvLayer): { K: RefTensor; V: RefTensor } {
  const K = ctx.arg(cache.k, 'cache.k', ANY_FLOAT, [-1, -1, -1, -1]);
  const V = ctx.arg(cache.v, 'cache.v', [K.dtype], K.shape);
  noAlias('cache.k', K, { 'cache.v': V });
  return { K, V };
}

/** Store f32 values into a cache tensor, rounding to its dtype (f16/bf16: nearest even). */
export function cacheSetter(t: RefTensor): (i: number, x: number) => void {
  if (t.dtype === 'f32') {
    const w = f32Window(t);
    return (i, x) => {
      w[i] = x;
    };
  }
  const bits = (t.storage.data as Uint16Array).subarray(t.offset, t.offset + t.numel);
  const conv = t.dtype === 'f16' ? f32ToF16 : f32ToBf16;
  return (i, x) => {
    bits[i] = conv(x);
  };
}

/** cache.k[slot] = k[t], cache.v[slot] = v[t] for each token with slotMapping[t] >= 0. */
export function kvWrite(ctx: RefContext, cache: KvLayer, k: Tensor, v: Tensor, slotMapping: Tensor): void {
  const { K: CK, V: CV } = cacheArgs(ctx, cache);
  const [NB, BS, Hkv, Dh] = CK.shape as [number, number, number, number];
  const Kin = ctx.arg(k, 'k', F32, [-1, Hkv, Dh]);
  const T = Kin.shape[0]!;
  const Vin = ctx.arg(v, 'v', F32, [T, Hkv, Dh]);
  const S = ctx.arg(slotMapping, 'slotMapping', I32, [T]);
  const inputs = { k: Kin, v: Vin, slotMapping: S };
  noAlias('cache.k', CK, inputs);
  noAlias('cache.v', CV, inputs);
  const slots = toInts(S);
  const kg = floatGetter(Kin);
  const vg = floatGetter(Vin);
  const ck = cacheSetter(CK);
  const cv = cacheSetter(CV);
  const row = Hkv * Dh;
  for (let t = 0; t < T; t++) {
    const slot = slots[t]!;
    if (slot < 0) continue;
    invariant(slot < NB * BS, () => `kvWrite: slotMapping[${t}] = ${slot} outside the cache (${NB * BS} slots)`);
    for (let i = 0; i < row; i++) {
      ck(slot * row + i, kg(t * row + i));
      cv(slot * row + i, vg(t * row + i));
    }
  }
}

interface SeqPlan {
  readonly qStart: number;
  readonly qLen: number;
  readonly seqLen: number;
  /** Flattened cache slot of each key position 0..seqLen-1. */
  readonly slots: Int32Array;
}

function planSequences(ctx: RefContext, meta: AttentionMetadata, T: number, NB: number, BS: number): SeqPlan[] {
  const S = meta.numSeqs;
  invariant(Number.isInteger(S) && S >= 0, () => `attention: numSeqs ${S}`);
  const qsl = toInts(ctx.arg(meta.queryStartLoc, 'meta.queryStartLoc', I32, [S + 1]));
  const lens = toInts(ctx.arg(meta.seqLens, 'meta.seqLens', I32, [S]));
  const BT = ctx.arg(meta.blockTables, 'meta.blockTables', I32, [S, -1]);
  const maxBlocks = BT.shape[1]!;
  const table = toInts(BT);
  invariant(qsl[0] === 0 && qsl[S] === T, () => `attention: queryStartLoc must run from 0 to numTokens ${T}, got ${qsl[0]}..${qsl[S]}`);
  const plans: SeqPlan[] = [];
  for (let s = 0; s < S; s++) {
    const qStart = qsl[s]!;
    const qLen = qsl[s + 1]! - qStart;
    const seqLen = lens[s]!;
    invariant(qLen >= 0, () => `attention: queryStartLoc decreases at sequence ${s}`);
    invariant(qLen <= seqLen, () => `attention: sequence ${s} has ${qLen} new tokens but seqLen ${seqLen}`);
    invariant(qLen <= meta.maxQueryLen, () => `attention: sequence ${s} qLen ${qLen} > maxQueryLen ${meta.maxQueryLen}`);
    invariant(seqLen <= meta.maxSeqLen, () => `attention: sequence ${s} seqLen ${seqLen} > maxSeqLen ${meta.maxSeqLen}`);
    invariant(
      Math.ceil(seqLen / BS) <= maxBlocks,
      () => `attention: sequence ${s} needs ${Math.ceil(seqLen / BS)} blocks, table has ${maxBlocks}`,
    );
    const slots = new Int32Array(seqLen);
    for (let p = 0; p < seqLen; p++) {
      const block = table[s * maxBlocks + Math.floor(p / BS)]!;
      invariant(
        block >= 0 && block < NB,
        () => `attention: sequence ${s} block table entry ${Math.floor(p / BS)} = ${block} outside [0, ${NB})`,
      );
      slots[p] = block * BS + (p % BS);
    }
    plans.push({ qStart, qLen, seqLen, slots });
  }
  return plans;
}

/**
 * out[t, h] = softmax(scale * q[t, h] . K^T) V over keys 0..pos (the last slidingWindow of them
 * when > 0), pos = seqLen - qLen + j for the j-th new token; kv head = h / (H / Hkv).
 */
export function attention(
  ctx: RefContext,
  out: Tensor,
  q: Tensor,
  cache: KvLayer,
  meta: AttentionMetadata,
  scale: number,
  slidingWindow: number,
): void {
  const Q = ctx.arg(q, 'q', F32, [-1, -1, -1]);
  const [T, H, Dh] = Q.shape as [number, number, number];
  const O = ctx.arg(out, 'out', F32, [T, H, Dh]);
  const { K, V } = cacheArgs(ctx, cache);
  const [NB, BS, Hkv] = K.shape as [number, number, number, number];
  invariant(K.shape[3] === Dh, () => `attention: cache head dim ${K.shape[3]} != q head dim ${Dh}`);
  invariant(Hkv > 0 && H % Hkv === 0, () => `attention: ${H} query heads not a multiple of ${Hkv} kv heads`);
  invariant(Number.isFinite(scale), `attention: scale ${scale}`);
  invariant(Number.isInteger(slidingWindow) && slidingWindow >= 0, `attention: slidingWindow ${slidingWindow}`);
  const plans = planSequences(ctx, meta, T, NB, BS);
  noAlias('out', O, { q: Q, 'cache.k': K, 'cache.v': V });
  const qg = floatGetter(Q);
  const kg = floatGetter(K);
  const vg = floatGetter(V);
  const o = f32Window(O);
  const group = H / Hkv;
  const qv = new Float64Array(Dh);
  const acc = new Float64Array(Dh);
  for (const { qStart, qLen, seqLen, slots } of plans) {
    const scores = new Float64Array(seqLen);
    for (let j = 0; j < qLen; j++) {
      const t = qStart + j;
      const pos = seqLen - qLen + j;
      const lo = slidingWindow > 0 ? Math.max(0, pos - slidingWindow + 1) : 0;
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        for (let d = 0; d < Dh; d++) qv[d] = qg((t * H + h) * Dh + d);
        let max = -Infinity;
        for (let p = lo; p <= pos; p++) {
          const base = (slots[p]! * Hkv + kvh) * Dh;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += qv[d]! * kg(base + d);
          scores[p] = scale * dot;
          if (scores[p]! > max) max = scores[p]!;
        }
        let sum = 0;
        acc.fill(0);
        for (let p = lo; p <= pos; p++) {
          const w = Math.exp(scores[p]! - max);
          sum += w;
          const base = (slots[p]! * Hkv + kvh) * Dh;
          for (let d = 0; d < Dh; d++) acc[d] = acc[d]! + w * vg(base + d);
        }
        for (let d = 0; d < Dh; d++) o[(t * H + h) * Dh + d] = acc[d]! / sum;
      }
    }
  }
}
