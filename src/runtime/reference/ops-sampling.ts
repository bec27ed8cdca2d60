// Reference grammar masking: the spec of Backend.applyTokenBitmask (runtime/token-bitmask.ts layout).
import type { Tensor } from '../backend.js';
import { invariant } from '../../util/invariant.js';
import { F32, f32Window, type RefContext } from './ref-tensor.js';

/**
 * For each masked row m: logits[packed[m], v] = -inf unless bit v % 32 of word v >> 5 of mask m is
 * set (v >= 32 * words: always -inf). Allowed logits are left bit for bit. logits [S, V] f32.
 */
export function applyTokenBitmask(ctx: RefContext, logits: Tensor, packed: Int32Array, numMasked: number, words: number): void {
  const L = ctx.arg(logits, 'logits', F32, [-1, -1]);
  const [S, V] = L.shape as [number, number];
  invariant(Number.isInteger(numMasked) && numMasked >= 0 && Number.isInteger(words) && words >= 1, 'applyTokenBitmask: bad counts');
  invariant(packed.length === numMasked * (words + 1), () => `applyTokenBitmask: ${packed.length} words for ${numMasked} x (${words} + 1)`);
  const data = f32Window(L);
  for (let m = 0; m < numMasked; m++) {
    const r = packed[m]!;
    invariant(Number.isInteger(r) && r >= 0 && r < S, () => `applyTokenBitmask: row ${r} outside [0, ${S})`);
    for (let v = 0; v < V; v++) {
      const w = v >>> 5;
      const bits = w < words ? packed[numMasked + m * words + w]! : 0;
      if (((bits >>> (v & 31)) & 1) === 0) data[r * V + v] = -Infinity;
    }
  }
}
