// Reference row and elementwise ops: embedding, siluMul, gatherRows, argmax.
// Values are computed in f64 and rounded once to f32 on store.
import type { Tensor } from '../backend.js';
import type { DType } from '../dtype.js';
import { invariant } from '../../util/invariant.js';
import { ANY_FLOAT, F32, I32, f32Window, floatGetter, i32Window, noAlias, toInts, type RefContext } from './ref-tensor.js';

/** out[t, :] = table[ids[t], :]. out [T, D] f32, table [V, D] any float dtype, ids i32 [T]. */
export function embedding(ctx: RefContext, out: Tensor, table: Tensor, ids: Tensor): void {
  copyRows(ctx, 'embedding', out, { name: 'table', t: table, dtypes: ANY_FLOAT }, { name: 'ids', t: ids });
}

/** out[s, :] = src[idx[s], :], src [N, D], idx i32 [S], out f32 [S, D]: embedding and gatherRows. */
function copyRows(
  ctx: RefContext,
  op: string,
  out: Tensor,
  src: { name: string; t: Tensor; dtypes: readonly DType[] },
  idx: { name: string; t: Tensor },
): void {
  const X = ctx.arg(src.t, src.name, src.dtypes, [-1, -1]);
  const [N, D] = X.shape as [number, number];
  const Idx = ctx.arg(idx.t, idx.name, I32, [-1]);
  const S = Idx.shape[0]!;
  const O = ctx.arg(out, 'out', F32, [S, D]);
  noAlias('out', O, { [src.name]: X, [idx.name]: Idx });
  const rv = toInts(Idx);
  const get = floatGetter(X);
  const o = f32Window(O);
  for (let s = 0; s < S; s++) {
    const r = rv[s]!;
    invariant(r >= 0 && r < N, () => `${op}: ${idx.name}[${s}] = ${r} outside [0, ${N})`);
    for (let i = 0; i < D; i++) o[s * D + i] = get(r * D + i);
  }
}

/** out[t, i] = silu(gateUp[t, i]) * gateUp[t, I + i]; silu(g) = g / (1 + exp(-g)). */
export function siluMul(ctx: RefContext, out: Tensor, gateUp: Tensor): void {
  const GU = ctx.arg(gateUp, 'gateUp', F32, [-1, -1]);
  const [T, I2] = GU.shape as [number, number];
  invariant(I2 % 2 === 0, () => `siluMul: gateUp width ${I2} is odd`);
  const I = I2 / 2;
  const O = ctx.arg(out, 'out', F32, [T, I]);
  noAlias('out', O, { gateUp: GU });
  const g = floatGetter(GU);
  const o = f32Window(O);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < I; i++) {
      const gate = g(t * I2 + i);
      const up = g(t * I2 + I + i);
      o[t * I + i] = (gate / (1 + Math.exp(-gate))) * up;
    }
  }
}

/** out[s, :] = x[rows[s], :]. x [T, D], rows i32 [S], out [S, D]. */
export function gatherRows(ctx: RefContext, out: Tensor, x: Tensor, rows: Tensor): void {
  copyRows(ctx, 'gatherRows', out, { name: 'x', t: x, dtypes: F32 }, { name: 'rows', t: rows });
}

/** out[s] = argmax over v of logits[s, v], lowest index on ties; NaN never wins. logits [S, V] f32, V >= 1. */
export function argmax(ctx: RefContext, out: Tensor, logits: Tensor): void {
  const L = ctx.arg(logits, 'logits', F32, [-1, -1]);
  const [S, V] = L.shape as [number, number];
  invariant(V >= 1, 'argmax over an empty vocabulary');
  const O = ctx.arg(out, 'out', I32, [S]);
  noAlias('out', O, { logits: L });
  const get = floatGetter(L);
  const o = i32Window(O);
  for (let s = 0; s < S; s++) {
    let best = 0;
    let bestVal = -Infinity;
    let found = false;
    for (let v = 0; v < V; v++) {
      const x = get(s * V + v);
      if (Number.isNaN(x)) continue;
      if (!found || x > bestVal) {
        best = v;
        bestVal = x;
        found = true;
      }
    }
    o[s] = best;
  }
}
