// The host-side sampler: picks one token per sequence per step from an f32 logits row read back
// from the backend. Order (as vLLM v1): logit bias -> repetition penalty (HF, prompt + output) ->
// presence/frequency penalties (OpenAI, output) -> greedy argmax, or temperature -> top-k and min-p
// -> top-p (renormalized over the survivors) -> a draw from the request's seeded PRNG.
// Logprobs are of the raw model distribution (log-softmax of the unprocessed logits), as vLLM's default.
// A constrained sequence (params.constraint) first drops every token its grammar's mask forbids
// (the mask is prepared by the model runner before sample()), and its matcher accepts the pick.

import { TokenmillError } from '../util/errors.js';
import { invariant } from '../util/invariant.js';
import { createRng, randomSeed, type Rng } from './rng.js';
import { Scratch, argmax, gatherAllowed, kthLargest, topN, topPCut } from './sampler-select.js';
import type { SamplingParams } from './sampling-params.js';
import type { SequenceGrammar } from './grammar/sequence-grammar.js';

/** Temperatures below this count as greedy (as vLLM). */
export const GREEDY_TEMPERATURE_EPS = 1e-5;

export interface TopLogprob {
  readonly tokenId: number;
  readonly logprob: number;
}

export interface SampledToken {
  readonly tokenId: number;
  /** log p(tokenId) under the raw model distribution; present when params.logprobs !== null. */
  readonly logprob?: number;
  /** The params.logprobs most likely tokens, best first (ties: lower id first); present with logprob. */
  readonly top?: readonly TopLogprob[];
}

export interface SequenceSamplerOptions {
  /** Row length of the logits passed to sample(); default: the whole array is one row. */
  readonly vocabSize?: number;
  /** Separates the PRNG streams of choices sharing one seed (the choice index for n > 1). */
  readonly stream?: number;
  /** The sequence's grammar state (required when params.constraint is set; engine.ts makes it). */
  readonly grammar?: SequenceGrammar | null;
}

export interface SequenceSampler {
  readonly params: SamplingParams;
  /** The seed in use (params.seed, or a fresh random one). */
  readonly seed: number;
  /**
   * True when sample() would return the plain argmax of the raw row (greedy, no bias, no penalties,
   * no logprobs): a caller may then take the id from backend.argmax and report it via recordToken().
   */
  readonly argmaxOnly: boolean;
  /** Pick the next token from logits[row * vocabSize .. +vocabSize) and record it as generated. */
  sample(logits: Float32Array, row?: number): SampledToken;
  /** Record a token chosen elsewhere (device argmax) so that penalties see it. */
  recordToken(tokenId: number): void;
  readonly numGeneratedTokens: number;
  /** Grammar state of a constrained sequence (its mask must be prepared before sample()); else null. */
  readonly grammar: SequenceGrammar | null;
  /** Free what the sampler holds outside the JS heap (the grammar matcher). */
  dispose(): void;
}

const scratch = new Scratch();

/** Build the per-sequence sampler state (penalty counters, PRNG); params were validated at the engine boundary (request-validate.ts). */
export function createSequenceSampler(
  params: SamplingParams,
  promptTokenIds: readonly number[],
  opts: SequenceSamplerOptions = {},
): SequenceSampler {
  invariant(
    (params.constraint === null) === ((opts.grammar ?? null) === null),
    'sampler: a constrained request needs its SequenceGrammar (and only then)',
  );
  return new SequenceSamplerImpl(params, promptTokenIds, opts);
}

class SequenceSamplerImpl implements SequenceSampler {
  readonly seed: number;
  readonly argmaxOnly: boolean;
  readonly grammar: SequenceGrammar | null;
  numGeneratedTokens = 0;
  private readonly rng: Rng;
  private readonly greedy: boolean;
  private readonly vocabSize: number | undefined;
  /** Repetition penalty: every distinct token of prompt + output (tracked only when it applies). */
  private readonly seenSet = new Set<number>();
  private readonly seenList: number[] = [];
  /** Presence/frequency penalties: output token -> count (tracked only when they apply). */
  private readonly outCounts = new Map<number, number>();
  private readonly trackSeen: boolean;
  private readonly trackCounts: boolean;

  constructor(
    readonly params: SamplingParams,
    promptTokenIds: readonly number[],
    opts: SequenceSamplerOptions,
  ) {
    this.seed = params.seed ?? randomSeed();
    this.rng = createRng(this.seed, opts.stream ?? 0);
    this.vocabSize = opts.vocabSize;
    this.greedy = params.temperature < GREEDY_TEMPERATURE_EPS;
    this.trackSeen = params.repetitionPenalty !== 1;
    this.trackCounts = params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
    this.grammar = opts.grammar ?? null;
    this.argmaxOnly =
      this.greedy &&
      !this.trackSeen &&
      !this.trackCounts &&
      params.logitBias.size === 0 &&
      params.logprobs === null &&
      this.grammar === null;
    if (this.trackSeen) for (const t of promptTokenIds) this.see(t);
  }

  recordToken(tokenId: number): void {
    this.grammar?.accept(tokenId);
    this.numGeneratedTokens++;
    if (this.trackSeen) this.see(tokenId);
    if (this.trackCounts) this.outCounts.set(tokenId, (this.outCounts.get(tokenId) ?? 0) + 1);
  }

  sample(logits: Float32Array, row = 0): SampledToken {
    const vocab = this.vocabSize ?? logits.length;
    invariant(
      Number.isInteger(row) && row >= 0 && (row + 1) * vocab <= logits.length,
      () => `sampler: row ${row} outside logits of length ${logits.length} (vocab ${vocab})`,
    );
    const raw = logits.subarray(row * vocab, (row + 1) * vocab);
    const x = this.process(raw);
    const g = this.grammar;
    let tokenId: number;
    if (g !== null && !g.maskIsFull) {
      // Only the grammar's allowed tokens compete: compact them, pick, map back.
      invariant(g.mask !== null, 'sampler: the grammar mask was not prepared for this step');
      scratch.ensure(vocab);
      const n = gatherAllowed(x, g.mask, scratch.allowedIds, scratch.allowedX);
      if (n === 0) throw new TokenmillError('internal_error', 'sampler: the grammar allows no token here');
      const xs = scratch.allowedX.subarray(0, n);
      const k = this.greedy ? argmax(xs) : this.draw(xs);
      tokenId = k < 0 ? -1 : scratch.allowedIds[k]!;
    } else {
      tokenId = this.greedy ? argmax(x) : this.draw(x);
    }
    if (tokenId < 0) throw new TokenmillError('internal_error', 'sampler: the logits row holds no finite value');
    this.recordToken(tokenId);
    if (this.params.logprobs === null) return { tokenId };
    return { tokenId, ...rawLogprobs(raw, tokenId, this.params.logprobs) };
  }

  dispose(): void {
    this.grammar?.dispose();
  }

  private see(t: number): void {
    if (!this.seenSet.has(t)) {
      this.seenSet.add(t);
      this.seenList.push(t);
    }
  }

  /** Apply bias and penalties on a scratch copy; the raw row itself when nothing applies. */
  private process(raw: Float32Array): Float32Array {
    const p = this.params;
    const needsRep = this.trackSeen && this.seenList.length > 0;
    const needsCounts = this.trackCounts && this.outCounts.size > 0;
    if (p.logitBias.size === 0 && !needsRep && !needsCounts) return raw;
    const vocab = raw.length;
    const x = scratch.ensure(vocab).x.subarray(0, vocab);
    x.set(raw);
    for (const [t, bias] of p.logitBias) if (t < vocab) x[t] = x[t]! + bias;
    if (needsRep) {
      const r = p.repetitionPenalty;
      for (const t of this.seenList) {
        if (t >= vocab) continue;
        const v = x[t]!;
        x[t] = v > 0 ? v / r : v * r;
      }
    }
    if (needsCounts) {
      for (const [t, count] of this.outCounts) {
        if (t < vocab) x[t] = x[t]! - p.presencePenalty - p.frequencyPenalty * count;
      }
    }
    return x;
  }

  /** Temperature, top-k, min-p, top-p, then one draw. Returns -1 when no token is finite. */
  private draw(x: Float32Array): number {
    const p = this.params;
    const vocab = x.length;
    const invT = 1 / p.temperature;
    let maxX = -Infinity;
    for (let i = 0; i < vocab; i++) if (x[i]! > maxX) maxX = x[i]!;
    if (maxX === -Infinity) return -1;
    scratch.ensure(vocab);
    const topK = p.topK > 0 && p.topK < vocab ? p.topK : 0;
    const w = scratch.candW;
    if (topK === 0 && p.minP === 0 && p.topP >= 1) {
      // Plain temperature sampling over the whole vocabulary: one exp pass, one walk.
      let total = 0;
      for (let i = 0; i < vocab; i++) {
        const v = x[i]!;
        const e = v > -Infinity ? Math.exp((v - maxX) * invT) : 0;
        w[i] = e;
        total += e;
      }
      return pick(w, null, vocab, total, this.rng.nextFloat());
    }
    // Candidates: x >= the min-p threshold (p_i >= minP * p_max), then the top-k of those.
    const thr = p.minP > 0 ? maxX + p.temperature * Math.log(p.minP) : -Infinity;
    const idx = scratch.candIdx;
    const s = scratch.candS;
    let n = 0;
    for (let i = 0; i < vocab; i++) {
      const v = x[i]!;
      if (v >= thr && v > -Infinity) {
        idx[n] = i;
        s[n] = v;
        n++;
      }
    }
    if (topK > 0 && n > topK) {
      const sel = scratch.sel;
      sel.set(s.subarray(0, n));
      const kth = kthLargest(sel, n, topK); // ties with the k-th value are kept (as HF)
      let m = 0;
      for (let i = 0; i < n; i++) {
        if (s[i]! >= kth) {
          idx[m] = idx[i]!;
          s[m] = s[i]!;
          m++;
        }
      }
      n = m;
    }
    let total = 0;
    for (let i = 0; i < n; i++) {
      const scaled = (s[i]! - maxX) * invT;
      s[i] = scaled;
      const e = Math.exp(scaled);
      w[i] = e;
      total += e;
    }
    if (p.topP < 1) {
      const kept = topPCut(idx, s, w, n, 0, total, p.topP, scratch.outIdx, scratch.outW);
      let keptTotal = 0;
      for (let i = 0; i < kept; i++) keptTotal += scratch.outW[i]!;
      return pick(scratch.outW, scratch.outIdx, kept, keptTotal, this.rng.nextFloat());
    }
    return pick(w, idx, n, total, this.rng.nextFloat());
  }
}

/** Inverse-CDF draw: the first candidate whose running mass exceeds u * total. */
function pick(w: Float64Array, ids: Int32Array | null, n: number, total: number, u: number): number {
  const target = u * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    if (wi <= 0) continue;
    acc += wi;
    last = i;
    if (target < acc) break;
  }
  if (last < 0) return -1;
  return ids === null ? last : ids[last]!;
}

/** log-softmax of the raw row at tokenId, and the numTop best tokens. */
function rawLogprobs(raw: Float32Array, tokenId: number, numTop: number): { logprob: number; top: TopLogprob[] } {
  let maxV = -Infinity;
  for (let i = 0; i < raw.length; i++) if (raw[i]! > maxV) maxV = raw[i]!;
  let sum = 0;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    if (v > -Infinity) sum += Math.exp(v - maxV);
  }
  const lse = maxV + Math.log(sum);
  const top = topN(raw, numTop).map(({ index, value }) => ({ tokenId: index, logprob: value - lse }));
  return { logprob: raw[tokenId]! - lse, top };
}
