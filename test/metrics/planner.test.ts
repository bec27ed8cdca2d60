// planner.ts on known configurations with hand-computed expectations (Llama-2-7B, Llama-3-8B GQA),
// the parameter count against the model layer's own weight list for every preset, the roofline and
// the cost (through cost.ts), bench-record parsing and estimate-vs-measured.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { usdPer1kTokens } from '../../src/metrics/cost.js';
import { ACCELERATORS, ACCELERATOR_KEYS, acceleratorSpec } from '../../src/metrics/gpu-specs.js';
import {
  compareMeasured,
  countParams,
  decodeEstimate,
  kvBytesPerToken,
  measuredPoints,
  planCapacity,
  weightBytes,
  type PlanOptions,
  type PlannerModelShape,
} from '../../src/metrics/planner.js';
import { parseModelConfig } from '../../src/model/config.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { expectedWeights } from '../../src/model/weights.js';

const base = { attentionBias: false, qkNorm: false };
const LLAMA2_7B: PlannerModelShape = {
  numLayers: 32,
  hiddenSize: 4096,
  intermediateSize: 11008,
  numHeads: 32,
  numKvHeads: 32,
  headDim: 128,
  vocabSize: 32000,
  tieWordEmbeddings: false,
  ...base,
};
const LLAMA3_8B: PlannerModelShape = {
  numLayers: 32,
  hiddenSize: 4096,
  intermediateSize: 14336,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 128,
  vocabSize: 128256,
  tieWordEmbeddings: false,
  ...base,
};

const h100 = ACCELERATORS.h100!;
const opts = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  model: LLAMA2_7B,
  accelerator: h100,
  usdPerHour: 3,
  contextLen: 4096,
  weightDType: 'bf16',
  kvDType: 'bf16',
  ...over,
});

describe('planner: parameters and memory', () => {
  it('Llama-2-7B: 6,738,415,616 parameters; KV per token bf16 = 2x32x32x128x2 = 524,288 bytes', () => {
    const p = countParams(LLAMA2_7B);
    assert.equal(p.total, 6_738_415_616);
    assert.equal(p.embedding, 32000 * 4096);
    assert.equal(p.lmHead, 32000 * 4096);
    assert.equal(p.small, 32 * 2 * 4096 + 4096);
    assert.equal(kvBytesPerToken(LLAMA2_7B, 'bf16'), 524_288);
    assert.equal(kvBytesPerToken(LLAMA2_7B, 'f32'), 1_048_576);
    assert.equal(weightBytes(LLAMA2_7B, 'bf16'), 6_738_415_616 * 2);
    // int8 matrices, bf16 norms
    assert.equal(weightBytes(LLAMA2_7B, 'int8'), 6_738_415_616 - 266_240 + 266_240 * 2);
  });

  it('Llama-3-8B (GQA 32/8): 8,030,261,248 parameters; KV per token bf16 = 2x32x8x128x2 = 131,072', () => {
    assert.equal(countParams(LLAMA3_8B).total, 8_030_261_248);
    assert.equal(kvBytesPerToken(LLAMA3_8B, 'bf16'), 131_072);
  });

  it('tied embeddings count once', () => {
    const tied = countParams({ ...LLAMA2_7B, tieWordEmbeddings: true });
    assert.equal(tied.total, 6_738_415_616 - 32000 * 4096);
    assert.equal(tied.lmHead, 0);
    assert.equal(tied.matmul, countParams(LLAMA2_7B).matmul); // the classifier still multiplies
  });

  for (const [name, preset] of Object.entries(MODEL_PRESETS)) {
    it(`${name}: count equals the sum over the model layer's expected weights (biases, q/k norms)`, () => {
      const c = parseModelConfig(preset.config);
      let n = 0;
      for (const shape of expectedWeights(c).values()) n += shape.reduce((a, b) => a * b, 1);
      assert.equal(countParams({ ...c }).total, n);
    });
  }

  it('max concurrent sequences: (memory - reserve - weights) / KV per sequence, whole blocks', () => {
    const p = planCapacity(opts());
    // 80e9 - 8e9 (10%) - 13,476,831,232 = 58,523,168,768; / (4096 x 524,288 = 2,147,483,648) = 27.25
    assert.equal(p.reserveBytes, 8e9);
    assert.equal(p.kvPoolBytes, 58_523_168_768);
    assert.equal(p.kvBytesPerSequence, 2_147_483_648);
    assert.equal(p.maxConcurrentSequences, 27);
    // context 4000 rounds up to 4000 (a multiple of 16); 4001 holds 251 blocks = 4016 tokens
    assert.equal(planCapacity(opts({ contextLen: 4001 })).kvBytesPerSequence, 4016 * 524_288);
    // Llama-3-8B GQA at 8k on an H100: 4x less KV per token
    const l3 = planCapacity(opts({ model: LLAMA3_8B, contextLen: 8192 }));
    assert.equal(l3.maxConcurrentSequences, Math.floor((72e9 - 8_030_261_248 * 2) / (8192 * 131_072)));
  });

  it('weights that do not fit leave zero sequences and nothing fits', () => {
    const p = planCapacity(opts({ accelerator: ACCELERATORS.l4! }));
    assert.ok(p.kvPoolBytes > 0);
    const big = planCapacity(opts({ accelerator: { ...ACCELERATORS.l4!, memoryGb: 10 } }));
    assert.equal(big.maxConcurrentSequences, 0);
    assert.ok(big.decode.every((d) => !d.fits));
  });
});

describe('planner: decode roofline and cost', () => {
  it('batch 1 Llama-2-7B bf16 on H100 at context 4096: memory bound, bytes by hand', () => {
    const d = decodeEstimate(opts(), 1);
    // weights 13,476,831,232 - untied embedding table 262,144,000 + one embedding row 8,192 + KV 2,147,483,648
    assert.equal(d.bytesPerStep, 15_362_179_072);
    assert.equal(d.bound, 'memory');
    assert.ok(Math.abs(d.stepSeconds - 15_362_179_072 / 3.35e12) < 1e-15);
    assert.ok(Math.abs(d.tokPerS - 3.35e12 / 15_362_179_072) < 1e-9);
    // flops: 2 x (layer matrices + classifier) + attention 4 x 32 x 32 x 128 x 4096
    assert.equal(d.flopsPerStep, 2 * (6_476_005_376 + 131_072_000) + 4 * 32 * 32 * 128 * 4096);
  });

  it('$/1M output tokens is cost.ts at one second of wall time', () => {
    const d = decodeEstimate(opts(), 8);
    assert.equal(d.usdPer1MTokens, usdPer1kTokens(3, 1, d.tokPerS) * 1000);
    assert.ok(Math.abs(d.usdPer1MTokens - (3 / 3600 / d.tokPerS) * 1e6) < 1e-9);
  });

  it('throughput grows with batch, per-token cost falls, and a large short-context batch turns compute bound', () => {
    const p = planCapacity(opts());
    assert.deepEqual(
      p.decode.map((d) => d.batch),
      [1, 2, 4, 8, 16, 32, 64, 128, 256],
    );
    for (let i = 1; i < p.decode.length; i++) {
      assert.ok(p.decode[i]!.tokPerS > p.decode[i - 1]!.tokPerS);
      assert.ok(p.decode[i]!.usdPer1MTokens < p.decode[i - 1]!.usdPer1MTokens);
    }
    assert.equal(decodeEstimate(opts({ contextLen: 16 }), 1024).bound, 'compute');
  });

  it('every accelerator has positive datasheet figures and a source', () => {
    assert.ok(ACCELERATOR_KEYS.includes('h200') && ACCELERATOR_KEYS.includes('cpu'));
    for (const a of Object.values(ACCELERATORS)) {
      assert.ok(a.memoryGb > 0 && a.bandwidthGbPerS > 0 && a.bf16Tflops > 0 && a.fp32Tflops > 0 && a.usdPerHour > 0, a.key);
      assert.match(a.source, /datasheet|whitepaper/);
    }
    assert.equal(acceleratorSpec('H100')?.key, 'h100');
    assert.equal(acceleratorSpec('tpu'), null);
  });
});

describe('planner: measured records', () => {
  it('reads tokPerS / decodeTokPerS.median, batch / concurrency, inLen + outLen', () => {
    assert.deepEqual(measuredPoints({ engine: 'tokenmill-cuda', device: 'H100', batch: 1, inLen: 100, outLen: 200, tokPerS: 150 }), [
      { label: 'tokenmill-cuda H100', tokPerS: 150, batch: 1, contextLen: 200 },
    ]);
    const pts = measuredPoints({
      records: [{ model: 'm', decodeTokPerS: { median: 42 } }, { concurrency: 8, tokPerS: 900 }, { nothing: 1 }],
    });
    assert.deepEqual(
      pts.map((p) => [p.tokPerS, p.batch, p.contextLen]),
      [
        [42, 1, null],
        [900, 8, null],
      ],
    );
    assert.deepEqual(measuredPoints([{ tokPerS: 0 }, 'x', null]), []);
  });

  it('ratio = measured / estimate at the record batch and context', () => {
    const est = decodeEstimate(opts(), 4, 300).tokPerS;
    const [c] = compareMeasured(opts(), [{ label: 'x', tokPerS: est / 2, batch: 4, contextLen: 300 }]);
    assert.equal(c!.estimatedTokPerS, est);
    assert.equal(c!.ratio, 0.5);
  });
});
