// Reference matmul: out = x . w^T (+ bias), weights in any float dtype, f64 dot products.
// x [T, K] f32, w [N, K] f32 | f16 | bf16, bias [N] f32 or null, out [T, N] f32.
import type { Tensor } from '../backend.js';
import { ANY_FLOAT, F32, f32Window, floatGetter, noAlias, toF64, type RefContext } from './ref-tensor.js';

export function matmul(ctx: RefContext, out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null): void {
  const X = ctx.arg(x, 'x', F32, [-1, -1]);
  const [T, K] = X.shape as [number, number];
  const Wt = ctx.arg(w, 'w', ANY_FLOAT, [-1, K]);
  const N = Wt.shape[0]!;
  const O = ctx.arg(out, 'out', F32, [T, N]);
  const B = bias === null ? null : ctx.arg(bias, 'bias', F32, [N]);
  noAlias('out', O, B ? { x: X, w: Wt, bias: B } : { x: X, w: Wt });
  const xs = toF64(X);
  const wg = floatGetter(Wt);
  const bs = B ? toF64(B) : null;
  const o = f32Window(O);
  const wRow = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) wRow[k] = wg(n * K + k);
    for (let t = 0; t < T; t++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += xs[t * K + k]! * wRow[k]!;
      o[t * N + n] = bs ? acc + bs[n]! : acc;
    }
  }
}
