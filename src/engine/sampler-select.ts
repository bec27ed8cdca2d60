// Selection kernels for the sampler over one f32 logits row: argmax, k-th largest (quickselect),
// the N best (for logprobs), and the top-p nucleus cut by histogram. None of them sorts a whole
// vocabulary: each is O(V) plus a sort of a small boundary set. Pure functions over scratch arrays.

/** Grow-only scratch buffers shared by every sampler (sampling is synchronous, so one set suffices). */
export class Scratch {
  /** The processed logits row (penalties and bias applied). */
  x = new Float32Array(0);
  /** Quickselect working copy. */
  sel = new Float32Array(0);
  /** Candidates: token id, scaled logit, unnormalized probability. */
  candIdx = new Int32Array(0);
  candS = new Float32Array(0);
  candW = new Float64Array(0);
  /** Survivors of the top-p cut. */
  outIdx = new Int32Array(0);
  outW = new Float64Array(0);
  /** A grammar's allowed token ids (ascending) and their logits, compacted. */
  allowedIds = new Int32Array(0);
  allowedX = new Float32Array(0);

  ensure(n: number): this {
    if (this.x.length < n) {
      this.x = new Float32Array(n);
      this.sel = new Float32Array(n);
      this.candIdx = new Int32Array(n);
      this.candS = new Float32Array(n);
      this.candW = new Float64Array(n);
      this.outIdx = new Int32Array(n);
      this.outW = new Float64Array(n);
      this.allowedIds = new Int32Array(n);
      this.allowedX = new Float32Array(n);
    }
    return this;
  }
}

/**
 * Gather the tokens a bitmask allows (bit id % 32 of word id >> 5, ids < x.length) into ids/vals in
 * ascending id order; returns their count. Sampling over the compacted row equals sampling over the
 * row with every other token at -inf (same candidates, same order), at a cost proportional to the
 * mask words plus the allowed tokens.
 */
export function gatherAllowed(x: Float32Array, mask: Int32Array, ids: Int32Array, vals: Float32Array): number {
  const vocab = x.length;
  const words = Math.min(mask.length, (vocab + 31) >>> 5);
  let n = 0;
  for (let w = 0; w < words; w++) {
    let bits = mask[w]!;
    const base = w << 5;
    while (bits !== 0) {
      const b = 31 - Math.clz32(bits & -bits); // lowest set bit
      bits &= bits - 1;
      const id = base + b;
      if (id >= vocab) break;
      ids[n] = id;
      vals[n] = x[id]!;
      n++;
    }
  }
  return n;
}

/** Index of the largest value (lowest index on ties; NaN never wins); -1 when all are -inf/NaN. */
export function argmax(x: Float32Array): number {
  let best = -1;
  let bestVal = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/**
 * The k-th largest of a[0..n) (k is 1-based, 1 <= k <= n). Reorders a[0..n). Three-way quickselect
 * with median-of-three pivots, so runs of equal values (masked logits) cost O(n).
 */
export function kthLargest(a: Float32Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  let target = k - 1; // index in descending order
  for (;;) {
    if (lo === hi) return a[lo]!;
    const mid = (lo + hi) >>> 1;
    const pivot = median3(a[lo]!, a[mid]!, a[hi]!);
    // Partition descending: [lo, gt) > pivot, [gt, i) == pivot, (lt, hi] < pivot.
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i <= lt) {
      const v = a[i]!;
      if (v > pivot) {
        a[i] = a[gt]!;
        a[gt] = v;
        gt++;
        i++;
      } else if (v < pivot) {
        a[i] = a[lt]!;
        a[lt] = v;
        lt--;
      } else {
        i++;
      }
    }
    if (target < gt - lo) {
      hi = gt - 1;
    } else if (target <= lt - lo) {
      return pivot;
    } else {
      target -= lt + 1 - lo;
      lo = lt + 1;
    }
  }
}

function median3(a: number, b: number, c: number): number {
  if (a < b) {
    if (b < c) return b;
    return a < c ? c : a;
  }
  if (a < c) return a;
  return b < c ? c : b;
}

/** The n largest entries of x, best first (lowest index first on ties). */
export function topN(x: Float32Array, n: number): { index: number; value: number }[] {
  const ids: number[] = [];
  const vals: number[] = [];
  if (n <= 0) return [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (ids.length === n && !(v > vals[n - 1]!)) continue;
    if (Number.isNaN(v)) continue;
    let j = ids.length === n ? n - 1 : ids.length;
    while (j > 0 && vals[j - 1]! < v) {
      if (j < n) {
        vals[j] = vals[j - 1]!;
        ids[j] = ids[j - 1]!;
      }
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  return ids.map((index, j) => ({ index, value: vals[j]! }));
}

const NUM_BINS = 2048;
/** Log-space range the histogram resolves; tokens further below the max share the last bin. */
const BIN_RANGE = 32;
const binMass = new Float64Array(NUM_BINS);
const binCount = new Int32Array(NUM_BINS);

/**
 * Nucleus (top-p) cut over candidates idx/w[0..n) where w holds unnormalized probabilities and s
 * the scaled logits (w = exp(s - maxS)); total = sum of w. Keeps the smallest set of most probable
 * candidates whose mass reaches topP of the total (HF semantics: a token is kept when the mass
 * strictly above it is < topP), writes them to outIdx/outW and returns their count (>= 1).
 * A histogram over log-probability finds the boundary bin; only that bin gets sorted.
 */
export function topPCut(
  idx: Int32Array,
  s: Float32Array,
  w: Float64Array,
  n: number,
  maxS: number,
  total: number,
  topP: number,
  outIdx: Int32Array,
  outW: Float64Array,
): number {
  binMass.fill(0);
  binCount.fill(0);
  const scale = NUM_BINS / BIN_RANGE;
  for (let i = 0; i < n; i++) {
    const b = Math.min(NUM_BINS - 1, Math.floor((maxS - s[i]!) * scale));
    binMass[b] += w[i]!;
    binCount[b]!++;
  }
  const target = topP * total;
  let cum = 0;
  let boundary = -1;
  for (let b = 0; b < NUM_BINS; b++) {
    if (binCount[b] === 0) continue;
    boundary = b;
    if (cum + binMass[b]! >= target) break;
    cum += binMass[b]!;
  }
  // Keep every candidate above the boundary bin; sort the boundary bin's members by probability.
  let kept = 0;
  const members: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = Math.min(NUM_BINS - 1, Math.floor((maxS - s[i]!) * scale));
    if (b < boundary) {
      outIdx[kept] = idx[i]!;
      outW[kept] = w[i]!;
      kept++;
    } else if (b === boundary) {
      members.push(i);
    }
  }
  members.sort((a, b) => w[b]! - w[a]! || idx[a]! - idx[b]!);
  for (const m of members) {
    if (cum >= target && kept > 0) break;
    outIdx[kept] = idx[m]!;
    outW[kept] = w[m]!;
    kept++;
    cum += w[m]!;
  }
  return kept;
}
