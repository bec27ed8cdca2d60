// Selection kernels (quickselect, top-N, histogram top-p cut) against full sorts, and parameter
// validation: every bad knob is invalid_argument naming its OpenAI field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, kthLargest, topN, topPCut } from '../../src/engine/sampler-select.js';
import { createRng } from '../../src/engine/rng.js';
import { validateEngineRequest } from '../../src/engine/request-validate.js';
import { validateSamplingParams } from '../../src/engine/sampling-validate.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { TokenmillError } from '../../src/util/errors.js';

function randomRow(n: number, seed: number, levels = 0): Float32Array {
  const rng = createRng(seed);
  // levels > 0 quantizes values to force many ties
  return new Float32Array(n).map(() => {
    const v = (rng.nextFloat() - 0.5) * 20;
    return levels > 0 ? Math.round(v * levels) / levels : v;
  });
}

test('kthLargest equals the sorted k-th value, with and without ties', () => {
  for (const [n, levels] of [
    [1, 0],
    [7, 0],
    [1000, 0],
    [1000, 1],
    [5000, 0.1],
  ] as const) {
    const row = randomRow(n, n + levels);
    const sorted = Array.from(row).sort((a, b) => b - a);
    for (const k of new Set([1, Math.min(2, n), Math.ceil(n / 3), n])) {
      assert.equal(kthLargest(Float32Array.from(row), n, k), sorted[k - 1], `n=${n} k=${k} levels=${levels}`);
    }
  }
});

test('topN returns the best N, lowest index first on ties; argmax agrees', () => {
  const row = Float32Array.from([1, 5, 3, 5, NaN, 4, -Infinity]);
  assert.deepEqual(topN(row, 3), [
    { index: 1, value: 5 },
    { index: 3, value: 5 },
    { index: 5, value: 4 },
  ]);
  assert.deepEqual(topN(row, 0), []);
  assert.equal(topN(row, 10).length, 6);
  assert.equal(argmax(row), 1);
  assert.equal(argmax(Float32Array.from([NaN, -Infinity])), -1);
});

test('topPCut keeps exactly the full-sort nucleus on random rows', () => {
  for (const [seed, n, topP] of [
    [1, 10, 0.5],
    [2, 2000, 0.9],
    [3, 50000, 0.3],
    [4, 3000, 0.999],
    [5, 100, 0.01],
  ] as const) {
    const row = randomRow(n, seed);
    const max = Math.max(...row);
    const idx = Int32Array.from(row.keys());
    const s = Float32Array.from(row, (v) => v - max);
    const w = Float64Array.from(s, (v) => Math.exp(v));
    const total = w.reduce((a, b) => a + b, 0);
    const outIdx = new Int32Array(n);
    const outW = new Float64Array(n);
    const kept = topPCut(idx, s, w, n, 0, total, topP, outIdx, outW);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const expected: number[] = [];
    let cum = 0;
    for (const i of order) {
      if (cum >= topP * total) break;
      expected.push(i);
      cum += w[i]!;
    }
    assert.deepEqual(
      Array.from(outIdx.subarray(0, kept)).sort((a, b) => a - b),
      expected.sort((a, b) => a - b),
      `seed ${seed}`,
    );
  }
});

test('validation: each bad field is invalid_argument with its param', () => {
  const cases: [Partial<SamplingParams>, string][] = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ topK: 1.5 }, 'top_k'],
    [{ topK: -2 }, 'top_k'],
    [{ topP: 0 }, 'top_p'],
    [{ topP: 1.01 }, 'top_p'],
    [{ minP: -0.1 }, 'min_p'],
    [{ repetitionPenalty: 0 }, 'repetition_penalty'],
    [{ presencePenalty: 2.5 }, 'presence_penalty'],
    [{ frequencyPenalty: -3 }, 'frequency_penalty'],
    [{ logitBias: new Map([[5, 101]]) }, 'logit_bias'],
    [{ logitBias: new Map([[-1, 1]]) }, 'logit_bias'],
    [{ logitBias: new Map([[600, 1]]) }, 'logit_bias'],
    [{ seed: 1.5 }, 'seed'],
    [{ maxTokens: 0 }, 'max_tokens'],
    [{ stop: [''] }, 'stop'],
    [{ stopTokenIds: [512] }, 'stop_token_ids'],
    [{ logprobs: 21 }, 'top_logprobs'],
    [{ n: 0 }, 'n'],
  ];
  for (const [over, param] of cases) {
    assert.throws(
      () => validateSamplingParams(samplingParams(over), { vocabSize: 512 }),
      (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument' && e.param === param,
      `${JSON.stringify(over)} -> ${param}`,
    );
  }
  assert.doesNotThrow(() => validateSamplingParams(samplingParams({ topK: -1, seed: -5, logprobs: 20, temperature: 0 })));
  // The sampler trusts its params: the engine boundary (request-validate.ts) rejects them first.
  const limits = { vocabSize: 512, maxModelLen: 64, canEmbed: false };
  assert.throws(() => validateEngineRequest({ requestId: 'r', promptTokenIds: [1], params: samplingParams({ topP: 2 }) }, limits), /top_p/);
});
