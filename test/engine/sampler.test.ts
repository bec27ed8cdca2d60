// Sampler unit tests: each knob on small synthetic logits with exact expectations, seeded
// determinism, and distributional sanity (fixed seeds, so never flaky).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequenceSampler, type SequenceSampler } from '../../src/engine/sampler.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { TokenmillError } from '../../src/util/errors.js';
import fc from 'fast-check';

const f32 = (xs: number[]) => Float32Array.from(xs);
const logs = (ps: number[]) => f32(ps.map(Math.log));

function run(s: SequenceSampler, logits: Float32Array, steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(s.sample(logits).tokenId);
  return out;
}

function freqs(params: Partial<SamplingParams>, logits: Float32Array, draws: number, seed = 1234): number[] {
  const s = createSequenceSampler(samplingParams({ seed, ...params }), []);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[s.sample(logits).tokenId]!++;
  return counts.map((c) => c / draws);
}

function support(fr: number[]): number[] {
  return fr.flatMap((f, i) => (f > 0 ? [i] : []));
}

test('greedy picks the argmax, lowest index on ties, and consumes no randomness', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0 }), []);
  assert.equal(s.argmaxOnly, true);
  assert.equal(s.sample(f32([1, 3, 2, 3])).tokenId, 1);
  assert.equal(s.sample(f32([-Infinity, -5, NaN, -4])).tokenId, 3);
  assert.equal(s.numGeneratedTokens, 2);
});

test('row selects a row of a [numRows, vocab] block', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0 }), [], { vocabSize: 3 });
  const block = f32([9, 0, 0, 0, 0, 9, 0, 9, 0]);
  assert.deepEqual(
    [0, 1, 2].map((r) => s.sample(block, r).tokenId),
    [0, 2, 1],
  );
});

test('logit bias shifts the choice', () => {
  const s = createSequenceSampler(
    samplingParams({
      temperature: 0,
      logitBias: new Map([
        [2, 2],
        [1, -100],
      ]),
    }),
    [],
  );
  assert.equal(s.argmaxOnly, false);
  assert.equal(s.sample(f32([1, 3, 2, 0])).tokenId, 2);
});

test('repetition penalty (HF): divides positive and multiplies negative logits of prompt+output tokens', () => {
  const pos = createSequenceSampler(samplingParams({ temperature: 0, repetitionPenalty: 1.2 }), [0]);
  assert.equal(pos.sample(f32([2, 1.9, -1])).tokenId, 1); // 2 / 1.2 = 1.67 < 1.9
  assert.equal(pos.sample(f32([2, 1.9, -1])).tokenId, 0); // now both seen: 1.67 > 1.58
  const neg = createSequenceSampler(samplingParams({ temperature: 0, repetitionPenalty: 1.2 }), [0]);
  assert.equal(neg.sample(f32([-0.5, -0.55, -3])).tokenId, 1); // -0.5 * 1.2 = -0.6 < -0.55
  const off = createSequenceSampler(samplingParams({ temperature: 0, repetitionPenalty: 1 }), [0]);
  assert.equal(off.sample(f32([2, 1.9, -1])).tokenId, 0);
});

test('frequency penalty (OpenAI) grows with the output count; the prompt does not count', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0, frequencyPenalty: 1 }), [0, 0, 0]);
  assert.deepEqual(run(s, f32([1, 0.5, 0.2]), 6), [0, 1, 2, 0, 1, 2]);
});

test('presence penalty is applied once per distinct output token', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0, presencePenalty: 0.6 }), [1]);
  assert.deepEqual(run(s, f32([1, 0.5]), 4), [0, 1, 0, 0]);
});

test('recordToken feeds penalties for tokens chosen on the device', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0, presencePenalty: 2 }), []);
  s.recordToken(0);
  assert.equal(s.sample(f32([1, 0.5])).tokenId, 1);
  assert.equal(s.numGeneratedTokens, 2);
});

test('top-k = 1 is greedy; top-k = 2 samples only the two best', () => {
  assert.deepEqual(support(freqs({ topK: 1 }, f32([1, 4, 3, 0]), 200)), [1]);
  const fr = freqs({ topK: 2 }, f32([5, 4, 3, 0]), 4000);
  assert.deepEqual(support(fr), [0, 1]);
  assert.ok(Math.abs(fr[0]! - Math.E / (1 + Math.E)) < 0.03, `p0 = ${fr[0]}`);
});

test('top-k keeps every token tied with the k-th value (HF)', () => {
  assert.deepEqual(support(freqs({ topK: 2 }, f32([5, 3, 3, 0]), 2000)), [0, 1, 2]);
});

test('top-p keeps the smallest prefix whose mass reaches p', () => {
  const l = logs([0.5, 0.3, 0.15, 0.05]);
  assert.deepEqual(support(freqs({ topP: 0.45 }, l, 500)), [0]);
  assert.deepEqual(support(freqs({ topP: 0.75 }, l, 2000)), [0, 1]);
  assert.deepEqual(support(freqs({ topP: 0.85 }, l, 2000)), [0, 1, 2]);
  const fr = freqs({ topP: 0.75 }, l, 8000);
  assert.ok(Math.abs(fr[0]! - 0.5 / 0.8) < 0.02, `renormalized p0 = ${fr[0]}`);
});

test('min-p keeps tokens with p >= minP * p_max, in temperature-scaled space', () => {
  const l = logs([0.5, 0.3, 0.15, 0.05]);
  assert.deepEqual(support(freqs({ minP: 0.2 }, l, 4000)), [0, 1, 2]);
  assert.deepEqual(support(freqs({ minP: 0.5 }, l, 2000)), [0, 1]);
  // T = 2 flattens: p ~ sqrt(p): 0.05 -> 0.224 * ... ratio sqrt(0.1) = 0.316 >= 0.3 keeps all four.
  assert.deepEqual(support(freqs({ minP: 0.3, temperature: 2 }, l, 8000)), [0, 1, 2, 3]);
});

test('top-k, top-p and min-p combine (top-p renormalized over the top-k survivors)', () => {
  const l = logs([0.4, 0.3, 0.2, 0.1]);
  // top-k 2 -> {0.4, 0.3} renormalized {0.571, 0.429}; top-p 0.5 keeps only token 0.
  assert.deepEqual(support(freqs({ topK: 2, topP: 0.5 }, l, 500)), [0]);
  assert.deepEqual(support(freqs({ topK: 3, minP: 0.6 }, l, 2000)), [0, 1]);
});

test('temperature sharpens and flattens the distribution', () => {
  const l = f32([0, Math.log(3)]);
  assert.ok(Math.abs(freqs({ temperature: 1 }, l, 8000)[1]! - 0.75) < 0.02);
  const pHot = 1 / (1 + 3 ** -(1 / 4));
  assert.ok(Math.abs(freqs({ temperature: 4 }, l, 8000)[1]! - pHot) < 0.02);
  assert.deepEqual(support(freqs({ temperature: 1e-6 }, l, 100)), [1]);
});

test('same seed, same tokens; another seed, other tokens; streams differ', () => {
  const l = new Float32Array(1000).map((_, i) => Math.sin(i * 12.9898) * 3);
  const a = run(createSequenceSampler(samplingParams({ seed: 42, topP: 0.95 }), []), l, 64);
  const b = run(createSequenceSampler(samplingParams({ seed: 42, topP: 0.95 }), []), l, 64);
  const c = run(createSequenceSampler(samplingParams({ seed: 43, topP: 0.95 }), []), l, 64);
  const d = run(createSequenceSampler(samplingParams({ seed: 42, topP: 0.95 }), [], { stream: 1 }), l, 64);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, d);
  const unseeded = createSequenceSampler(samplingParams(), []);
  assert.ok(Number.isSafeInteger(unseeded.seed));
});

test('logprobs: raw log-softmax of the chosen token and the top-N alternatives', () => {
  const s = createSequenceSampler(samplingParams({ temperature: 0, logprobs: 2, repetitionPenalty: 2 }), [0]);
  const out = s.sample(logs([0.5, 0.3, 0.15, 0.05]));
  assert.equal(out.tokenId, 1); // the penalty moved the choice, not the reported distribution
  assert.ok(Math.abs(out.logprob! - Math.log(0.3)) < 1e-6);
  assert.deepEqual(
    out.top!.map((t) => t.tokenId),
    [0, 1],
  );
  assert.ok(Math.abs(out.top![0]!.logprob - Math.log(0.5)) < 1e-6);
  const zero = createSequenceSampler(samplingParams({ temperature: 0, logprobs: 0 }), []).sample(f32([0, 1]));
  assert.deepEqual(zero.top, []);
  assert.equal(createSequenceSampler(samplingParams({ temperature: 0 }), []).sample(f32([0, 1])).logprob, undefined);
});

test('distribution matches a full-sort reference on a 2k vocab (T, top-k, top-p, min-p)', () => {
  const vocab = 2000;
  const l = new Float32Array(vocab).map((_, i) => 4 * Math.sin(i * 0.7311) + (i % 7) * 0.3);
  const params = { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.01 };
  const ref = referenceProbs(l, params);
  const draws = 20000;
  const fr = freqs(params, l, draws, 7);
  for (let i = 0; i < vocab; i++) {
    if (ref[i] === 0) assert.equal(fr[i], 0, `token ${i} must be filtered out`);
    else assert.ok(Math.abs(fr[i]! - ref[i]!) < 4 * Math.sqrt(ref[i]! / draws) + 1e-3, `token ${i}: ${fr[i]} vs ${ref[i]}`);
  }
});

test('a 152k vocabulary with top-p only (histogram path) matches the reference support', () => {
  const vocab = 152064;
  const l = new Float32Array(vocab).map((_, i) => 2 * Math.sin(i * 1.618) + Math.cos(i * 0.01));
  const ref = referenceProbs(l, { temperature: 1, topK: 0, topP: 0.5, minP: 0 });
  const s = createSequenceSampler(samplingParams({ seed: 3, topP: 0.5 }), []);
  for (let i = 0; i < 50; i++) assert.ok(ref[s.sample(l).tokenId]! > 0);
});

test('a row with no finite logit is an internal error', () => {
  const s = createSequenceSampler(samplingParams({ seed: 1 }), []);
  assert.throws(
    () => s.sample(f32([-Infinity, NaN])),
    (e: unknown) => e instanceof TokenmillError && e.code === 'internal_error',
  );
});

test('property: every draw lies in the full-sort reference support (ties included); seeds replay', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -40, max: 40 }), { minLength: 2, maxLength: 60 }),
      fc.record({
        temperature: fc.double({ min: 0.05, max: 3, noNaN: true }),
        topK: fc.integer({ min: 0, max: 70 }),
        topP: fc.double({ min: 0.05, max: 1, noNaN: true }),
        minP: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.9, noNaN: true })),
      }),
      fc.integer({ min: 0, max: 2 ** 40 }),
      (ints, p, seed) => {
        const l = Float32Array.from(ints, (v) => v / 4); // quarter steps: plenty of exact ties
        const ref = referenceProbs(l, { ...p, topK: p.topK >= l.length ? 0 : p.topK });
        const a = createSequenceSampler(samplingParams({ ...p, seed }), []);
        const b = createSequenceSampler(samplingParams({ ...p, seed }), []);
        for (let i = 0; i < 12; i++) {
          const t = a.sample(l).tokenId;
          if (!(ref[t]! > 0)) return false;
          if (b.sample(l).tokenId !== t) return false;
        }
        return true;
      },
    ),
    { seed: 20261125, numRuns: 300 },
  );
});

/** Probabilities after temperature, top-k (ties kept), min-p, top-p; computed with a full sort. */
function referenceProbs(l: Float32Array, p: { temperature: number; topK: number; topP: number; minP: number }): number[] {
  const order = Array.from(l.keys()).sort((a, b) => l[b]! - l[a]! || a - b);
  const max = l[order[0]!]!;
  const w = Array.from(l, (v) => Math.exp((v - max) / p.temperature));
  const kth = p.topK > 0 ? l[order[p.topK - 1]!]! : -Infinity;
  const keep = order.filter((i) => l[i]! >= kth && w[i]! >= p.minP);
  const total = keep.reduce((a, i) => a + w[i]!, 0);
  const kept: number[] = [];
  let cum = 0;
  for (const i of keep) {
    if (cum >= p.topP * total) break;
    kept.push(i);
    cum += w[i]!;
  }
  const probs = new Array<number>(l.length).fill(0);
  for (const i of kept) probs[i] = w[i]! / cum;
  return probs;
}

test('a grammar mask: sampling the compacted allowed set equals sampling the row with the rest at -inf', () => {
  // The grammar stub carries only what the sampler reads (mask, maskIsFull) and records accepts.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.record({
        temperature: fc.constantFrom(0, 0.7, 1.3),
        topK: fc.constantFrom(0, 1, 5),
        topP: fc.constantFrom(1, 0.8),
        minP: fc.constantFrom(0, 0.05),
      }),
      (vocab, seed, knobs) => {
        let s = seed;
        const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
        const logits = Float32Array.from({ length: vocab }, () => rnd() * 8 - 4);
        const mask = new Int32Array(Math.ceil(vocab / 32));
        for (let id = 0; id < vocab; id++) if (rnd() < 0.3) mask[id >>> 5]! |= 1 << (id & 31);
        mask[0]! |= 1; // at least one allowed
        const accepted: number[] = [];
        const grammar = { mask, maskIsFull: false, accept: (t: number) => accepted.push(t), dispose: () => undefined };
        const params = samplingParams({ seed: 9, ...knobs, constraint: { type: 'json_object' } });
        const masked = createSequenceSampler(params, [], { grammar: grammar as never });
        const dense = createSequenceSampler({ ...params, constraint: null }, []);
        const row = logits.map((v, id) => (((mask[id >>> 5]! >>> (id & 31)) & 1) === 1 ? v : -Infinity));
        for (let i = 0; i < 5; i++) {
          const a = masked.sample(logits).tokenId;
          assert.equal(a, dense.sample(row).tokenId);
          assert.equal((mask[a >>> 5]! >>> (a & 31)) & 1, 1);
        }
        assert.equal(accepted.length, 5);
      },
    ),
    { numRuns: 200 },
  );
});
