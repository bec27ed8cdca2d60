// Reference rotary embedding, HF "rotate_half" layout, in place on q [T, H, Dh] and k [T, Hkv, Dh].
// The angle positions[t] * invFreq[i] is rounded to f32 (as HF computes it, and as f32 kernels do);
// cos/sin and the rotation are then evaluated in f64 and rounded once on store.
import type { Tensor } from '../backend.js';
import { invariant } from '../../util/invariant.js';
import { F32, I32, f32Window, noAlias, toF64, toInts, type RefContext } from './ref-tensor.js';

function rotate(x: Float32Array, numHeads: number, dh: number, positions: Int32Array, invFreq: Float64Array): void {
  const half = dh / 2;
  const T = positions.length;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t]! * invFreq[i]!);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      for (let h = 0; h < numHeads; h++) {
        const base = (t * numHeads + h) * dh;
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}

export function rope(ctx: RefContext, q: Tensor, k: Tensor, positions: Tensor, invFreq: Tensor): void {
  const Q = ctx.arg(q, 'q', F32, [-1, -1, -1]);
  const [T, H, Dh] = Q.shape as [number, number, number];
  invariant(Dh % 2 === 0, () => `rope: head dim ${Dh} is odd`);
  const K = ctx.arg(k, 'k', F32, [T, -1, Dh]);
  const P = ctx.arg(positions, 'positions', I32, [T]);
  const F = ctx.arg(invFreq, 'invFreq', F32, [Dh / 2]);
  noAlias('q', Q, { k: K, positions: P, invFreq: F });
  noAlias('k', K, { positions: P, invFreq: F });
  const pos = toInts(P);
  const freq = toF64(F);
  rotate(f32Window(Q), H, Dh, pos, freq);
  rotate(f32Window(K), K.shape[1]!, Dh, pos, freq);
}
