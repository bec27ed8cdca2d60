// Reference rmsnorm and fused residual-add + rmsnorm: f64 sums, one f32 rounding per stored value.
// Each row is read whole before anything is written, so the allowed aliasing (out = x) is safe.
import type { Tensor } from '../backend.js';
import { invariant } from '../../util/invariant.js';
import { F32, aliasExactOrNone, f32Window, floatGetter, noAlias, type RefContext } from './ref-tensor.js';

function normRow(row: Float64Array, w: (i: number) => number, eps: number, out: Float32Array, outBase: number): void {
  const D = row.length;
  let ss = 0;
  for (let i = 0; i < D; i++) ss += row[i]! * row[i]!;
  const inv = 1 / Math.sqrt(ss / D + eps);
  for (let i = 0; i < D; i++) out[outBase + i] = row[i]! * inv * w(i);
}

function checkEps(eps: number): void {
  invariant(Number.isFinite(eps) && eps >= 0, `rmsnorm eps must be finite and >= 0, got ${eps}`);
}

/** out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight. out may alias x. */
export function rmsnorm(ctx: RefContext, out: Tensor, x: Tensor, weight: Tensor, eps: number): void {
  const X = ctx.arg(x, 'x', F32, [-1, -1]);
  const [R, D] = X.shape as [number, number];
  const O = ctx.arg(out, 'out', F32, [R, D]);
  const W = ctx.arg(weight, 'weight', F32, [D]);
  checkEps(eps);
  aliasExactOrNone('out', O, 'x', X);
  noAlias('out', O, { weight: W });
  const xs = floatGetter(X);
  const w = floatGetter(W);
  const o = f32Window(O);
  const row = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < D; i++) row[i] = xs(r * D + i);
    normRow(row, w, eps, o, r * D);
  }
}

/** residual += x (stored in f32), then out = rmsnorm(residual) * weight. out may alias x (not residual). */
export function addRmsnorm(ctx: RefContext, out: Tensor, residual: Tensor, x: Tensor, weight: Tensor, eps: number): void {
  const Res = ctx.arg(residual, 'residual', F32, [-1, -1]);
  const [R, D] = Res.shape as [number, number];
  const X = ctx.arg(x, 'x', F32, [R, D]);
  const O = ctx.arg(out, 'out', F32, [R, D]);
  const W = ctx.arg(weight, 'weight', F32, [D]);
  checkEps(eps);
  aliasExactOrNone('out', O, 'x', X);
  noAlias('out', O, { residual: Res, weight: W });
  noAlias('residual', Res, { x: X, weight: W });
  const xs = floatGetter(X);
  const w = floatGetter(W);
  const res = f32Window(Res);
  const o = f32Window(O);
  const row = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < D; i++) {
      res[r * D + i] = res[r * D + i]! + xs(r * D + i); // rounded to f32 on store: the new residual stream
      row[i] = res[r * D + i]!;
    }
    normRow(row, w, eps, o, r * D);
  }
}
