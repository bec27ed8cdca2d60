// Reference weight-only int8 matmul (Backend.matmulQ8): out[t, n] = s[n] * sum_k x[t, k] * wq[n, k]
// (+ bias[n]), f64 dot products. x [T, K] f32, wq [N, K] i8, scales [N] f32, bias [N] float or null.
import type { Tensor } from '../backend.js';
import { invariant } from '../../util/invariant.js';
import { ANY_FLOAT, F32, f32Window, noAlias, toF64, type RefContext } from './ref-tensor.js';

export function matmulQ8(ctx: RefContext, out: Tensor, x: Tensor, wq: Tensor, scales: Tensor, bias: Tensor | null): void {
  const X = ctx.arg(x, 'x', F32, [-1, -1]);
  const [T, K] = X.shape as [number, number];
  const Wq = ctx.arg(wq, 'wq', ['i8'], [-1, K]);
  const N = Wq.shape[0]!;
  const S = ctx.arg(scales, 'scales', F32, [N]);
  const O = ctx.arg(out, 'out', F32, [T, N]);
  const B = bias === null ? null : ctx.arg(bias, 'bias', ANY_FLOAT, [N]);
  noAlias('out', O, B ? { x: X, wq: Wq, scales: S, bias: B } : { x: X, wq: Wq, scales: S });
  const xs = toF64(X);
  const ss = toF64(S);
  const bs = B ? toF64(B) : null;
  const q = Wq.storage.data as Int8Array;
  invariant(q instanceof Int8Array, 'wq storage is not Int8Array');
  const o = f32Window(O);
  for (let n = 0; n < N; n++) {
    const row = Wq.offset + n * K;
    for (let t = 0; t < T; t++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += xs[t * K + k]! * q[row + k]!;
      const v = ss[n]! * acc;
      o[t * N + n] = bs ? v + bs[n]! : v;
    }
  }
}
