// Grammar masks on the device, without a GPU: the host-side logic (which rows are masked, the packed
// layout, eligibility, fallback) and the ModelRunner wiring through the real Engine. The model's
// CPU backend has applyTokenBitmask (checked against the reference in test/conformance); sample() is
// added here as a greedy device sampler (argmax of the masked logits), so a constrained greedy
// request must give exactly the tokens the host sampler gives, and every token passes the matcher.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { deviceEligible, deviceMaskRows } from '../../src/engine/device-sampling.js';
import type { EngineOutput } from '../../src/engine/engine-api.js';
import type { SequenceGrammar } from '../../src/engine/grammar/sequence-grammar.js';
import { samplingParams, type Constraint, type SamplingParams } from '../../src/engine/sampling-params.js';
import type { SequenceSampler } from '../../src/engine/sampler.js';
import type { DeviceSampleRow, Tensor } from '../../src/runtime/backend.js';
import { bitmaskWords, packTokenBitmasks } from '../../src/runtime/token-bitmask.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { disposeRealVocabModels, realVocabModel, type RealVocabModel } from './real-vocab-model.js';

after(disposeRealVocabModels);
const skip = skipUnlessShared('llama2-tokenizer/tokenizer.bin');

test('packTokenBitmasks: row ids first, then one padded or cut mask per row; the buffer is reused', () => {
  const p = packTokenBitmasks(
    [
      { row: 3, mask: Int32Array.of(-1, 5) },
      { row: 0, mask: Int32Array.of(7, 8, 9, 10) },
    ],
    3,
  );
  assert.deepEqual([...p], [3, 0, -1, 5, 0, 7, 8, 9]);
  const buf = new Int32Array(16).fill(99);
  const q = packTokenBitmasks([{ row: 1, mask: Int32Array.of(1) }], 2, buf);
  assert.equal(q.buffer, buf.buffer);
  assert.deepEqual([...q], [1, 1, 0]);
  assert.equal(bitmaskWords(32), 1);
  assert.equal(bitmaskWords(33), 2);
  assert.equal(bitmaskWords(151936), 4748);
});

function fakeSampler(grammar: Partial<SequenceGrammar> | null, extra: Partial<SamplingParams> = {}): SequenceSampler {
  return { params: samplingParams(extra), grammar: grammar as SequenceGrammar | null } as SequenceSampler;
}

test('deviceMaskRows: only constrained rows whose mask forbids something; eligibility needs device masks', () => {
  const mask = Int32Array.of(5);
  const samplers = [
    fakeSampler(null),
    fakeSampler({ mask, maskIsFull: false }),
    fakeSampler({ mask: Int32Array.of(-1), maskIsFull: true }),
    fakeSampler({ mask, maskIsFull: false }),
  ];
  assert.deepEqual(
    deviceMaskRows(samplers).map((r) => r.row),
    [1, 3],
  );
  assert.equal(deviceMaskRows(samplers)[0]!.mask, mask);
  assert.equal(deviceEligible(samplers[1]!), false, 'constrained rows stay on the host without device masks');
  assert.equal(deviceEligible(samplers[1]!, true), true);
  assert.equal(deviceEligible(fakeSampler({ mask, maskIsFull: false }, { logprobs: 1 }), true), false);
  assert.throws(() => deviceMaskRows([fakeSampler({ mask: null, maskIsFull: false })]), /not prepared/);
});

interface Spy {
  sampleRows: number[];
  maskCalls: { rows: number[]; words: number }[];
  restore(): void;
}

/** Give the model's backend a greedy sample() and watch its applyTokenBitmask calls (own properties). */
function spyOn(m: RealVocabModel, opts: { hideMaskOp?: boolean } = {}): Spy {
  const b = m.backend;
  const spy: Spy = {
    sampleRows: [],
    maskCalls: [],
    restore: () => {
      delete (b as unknown as Record<string, unknown>).sample;
      delete (b as unknown as Record<string, unknown>).applyTokenBitmask;
    },
  };
  const sample = (out: Tensor, logits: Tensor, rows: readonly DeviceSampleRow[]): void => {
    spy.sampleRows.push(rows.length);
    b.argmax(out, logits);
  };
  Object.defineProperty(b, 'sample', { value: sample, configurable: true });
  const orig = b.applyTokenBitmask!.bind(b);
  const mask = (logits: Tensor, packed: Int32Array, n: number, words: number): void => {
    spy.maskCalls.push({ rows: [...packed.subarray(0, n)], words });
    orig(logits, packed, n, words);
  };
  Object.defineProperty(b, 'applyTokenBitmask', { value: opts.hideMaskOp === true ? undefined : mask, configurable: true });
  return spy;
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['a', 'b'],
  properties: { a: { enum: ['x', 'yy', 'zzz'] }, b: { type: 'integer', minimum: 0, maximum: 99 } },
};
const C: Constraint = { type: 'json_schema', schema: SCHEMA, strict: true };

async function runAll(
  m: RealVocabModel,
  deviceGrammarMasks: boolean,
): Promise<{ outs: number[][]; stats: AsyncEngine['engine']['runner']['grammarStats'] }> {
  const eng = new AsyncEngine({
    model: m.model,
    modelId: 't',
    tokenizer: m.tokenizer,
    eosTokenIds: m.eosTokenIds,
    numBlocks: 128,
    blockSize: 16,
    maxNumSeqs: 8,
    deviceGrammarMasks,
  });
  const prompt = await m.tokenizer.encode('JSON:');
  const reqs: [string, SamplingParams][] = [
    ['c0', samplingParams({ temperature: 0, maxTokens: 24, constraint: C, n: 2 })],
    ['free', samplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true })],
    ['c1', samplingParams({ temperature: 0, maxTokens: 30, constraint: C })],
  ];
  for (const [, p] of reqs) if (p.constraint !== null) await eng.engine.prepare(p);
  const outs = await Promise.all(
    reqs.map(async ([id, params], k) => {
      const byIndex: number[][] = Array.from({ length: params.n }, () => []);
      for await (const o of eng.generate({ requestId: id, promptTokenIds: [...prompt, k], params }) as AsyncIterable<EngineOutput>)
        byIndex[o.index]!.push(...o.newTokenIds);
      return byIndex;
    }),
  );
  const stats = { ...eng.engine.runner.grammarStats };
  await eng.shutdown();
  return { outs: outs.flat(), stats };
}

test('constrained rows sample on the device when it masks: only their masks go up, same tokens as the host', { skip }, async () => {
  const m = await realVocabModel('llama2');
  const host = await runAll(m, false);
  assert.equal(host.stats.numDeviceSteps, 0);
  const spy = spyOn(m);
  try {
    const dev = await runAll(m, true);
    assert.ok(dev.stats.numDeviceSteps > 0 && dev.stats.numDeviceMaskedRows > 0, JSON.stringify(dev.stats));
    assert.ok(spy.sampleRows.length > 0);
    assert.ok(spy.maskCalls.length > 0);
    for (const c of spy.maskCalls) {
      assert.equal(c.words, bitmaskWords(m.model.config.vocabSize));
      assert.ok(c.rows.length >= 1 && c.rows.length <= 3, `at most the 3 constrained sequences per step: ${c.rows}`);
      assert.equal(new Set(c.rows).size, c.rows.length);
    }
    assert.deepEqual(dev.outs, host.outs, 'greedy on the masked device row = greedy over the allowed ids on the host');
  } finally {
    spy.restore();
  }
});

test('fallback: without the mask op (or with deviceGrammarMasks off) constrained steps stay on the host', { skip }, async () => {
  const m = await realVocabModel('llama2');
  const spy = spyOn(m, { hideMaskOp: true });
  try {
    const r = await runAll(m, true);
    assert.equal(r.stats.numDeviceSteps, 0);
    assert.ok(r.stats.numSteps > 0, 'masks were still computed, for the host sampler');
    assert.equal(spy.maskCalls.length, 0);
  } finally {
    spy.restore();
  }
  const spy2 = spyOn(m);
  try {
    const r = await runAll(m, false);
    assert.equal(r.stats.numDeviceSteps, 0);
    assert.equal(spy2.maskCalls.length, 0);
  } finally {
    spy2.restore();
  }
});
