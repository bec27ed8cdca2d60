// The packed layout of grammar bitmasks for Backend.applyTokenBitmask: one Int32Array holding
// [numMasked] logits row ids, then [numMasked, words] allowed-token words in xgrammar's layout (bit
// v % 32 of word v >> 5 set = token v allowed; tokens at or past 32 * words are disallowed). One
// array per step means one host->device copy. Pure host code: no backend calls here.
import { invariant } from '../util/invariant.js';

export interface MaskedRow {
  /** Row of the step's logits [S, V] the mask applies to. */
  readonly row: number;
  /** xgrammar's next-token bitmask for that row: at least one word, at most `words` read. */
  readonly mask: Int32Array;
}

/** Words of a bitmask that covers `vocab` tokens. */
export function bitmaskWords(vocab: number): number {
  return (vocab + 31) >>> 5;
}

/**
 * Pack rows' masks as applyTokenBitmask takes them. Masks shorter than `words` are padded with zero
 * words (those tokens disallowed); longer ones are cut. `into` is reused when large enough (a view
 * of it is returned), so a caller can keep one grow-only buffer.
 */
export function packTokenBitmasks(rows: readonly MaskedRow[], words: number, into?: Int32Array): Int32Array {
  invariant(Number.isInteger(words) && words >= 1, () => `packTokenBitmasks: bad words ${words}`);
  const n = rows.length;
  const len = n * (words + 1);
  const out = into !== undefined && into.length >= len ? into.subarray(0, len) : new Int32Array(len);
  for (let m = 0; m < n; m++) {
    const { row, mask } = rows[m]!;
    invariant(Number.isInteger(row) && row >= 0, () => `packTokenBitmasks: bad row ${row}`);
    out[m] = row;
    const dst = out.subarray(n + m * words, n + (m + 1) * words);
    const k = Math.min(words, mask.length);
    dst.set(k === mask.length ? mask : mask.subarray(0, k));
    dst.fill(0, k);
  }
  return out;
}

/**
 * applyTokenBitmask over host memory: data is logits [S, V] f32 (S = data.length / V). Word by word,
 * so rows cost V / 32 word reads plus one store per disallowed token. Host backends use it; the
 * reference keeps its own per-token loop as the spec.
 */
export function applyTokenBitmaskInPlace(data: Float32Array, V: number, packed: Int32Array, numMasked: number, words: number): void {
  const S = data.length / V;
  invariant(Number.isInteger(S) && V >= 1, 'applyTokenBitmask: logits must be [S, V]');
  invariant(Number.isInteger(numMasked) && numMasked >= 0 && Number.isInteger(words) && words >= 1, 'applyTokenBitmask: bad counts');
  invariant(packed.length === numMasked * (words + 1), () => `applyTokenBitmask: ${packed.length} words for ${numMasked} x (${words} + 1)`);
  for (let m = 0; m < numMasked; m++) {
    const r = packed[m]!;
    invariant(Number.isInteger(r) && r >= 0 && r < S, () => `applyTokenBitmask: row ${r} outside [0, ${S})`);
    const row = data.subarray(r * V, (r + 1) * V);
    const base = numMasked + m * words;
    const numWords = bitmaskWords(V);
    for (let w = 0; w < numWords; w++) {
      const bits = w < words ? packed[base + w]! : 0;
      if (bits === -1) continue;
      const end = Math.min(V, (w + 1) << 5);
      for (let v = w << 5; v < end; v++) if (((bits >>> (v & 31)) & 1) === 0) row[v] = -Infinity;
    }
  }
}
