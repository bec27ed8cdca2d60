// Every generator preset parses, has the documented shape and parameter count, and its random
// tensors are lazy (nothing generated until written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseModelConfig } from '../../src/model/config.js';
import { MODEL_PRESETS, TINY_PRESETS } from '../../src/model/model-presets.js';
import { randomTensors } from '../../src/model/random-model.js';
import { expectedWeights } from '../../src/model/weights.js';

function numParams(name: string): number {
  const c = parseModelConfig(MODEL_PRESETS[name]!.config, name);
  let n = 0;
  for (const shape of expectedWeights(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

test('every preset parses; tiny presets cover every architecture and feature', () => {
  for (const [name, p] of Object.entries(MODEL_PRESETS)) parseModelConfig(p.config, name);
  const tiny = TINY_PRESETS.map((n) => parseModelConfig(MODEL_PRESETS[n]!.config, n));
  assert.deepEqual(
    new Set(tiny.map((c) => c.architecture)),
    new Set(['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM']),
  );
  assert.ok(tiny.some((c) => c.ropeScaling?.type === 'llama3' && !c.tieWordEmbeddings));
  assert.ok(tiny.some((c) => c.slidingWindow > 0));
  assert.ok(tiny.some((c) => c.attentionBias));
  assert.ok(tiny.some((c) => c.qkNorm && c.headDim * c.numHeads !== c.hiddenSize));
  assert.ok(tiny.some((c) => c.tieWordEmbeddings));
});

test("big presets have the real models' shapes and parameter counts", () => {
  const s15 = parseModelConfig(MODEL_PRESETS.stories15M!.config);
  assert.deepEqual([s15.hiddenSize, s15.intermediateSize, s15.numLayers, s15.numHeads, s15.vocabSize], [288, 768, 6, 6, 32000]);
  const s110 = parseModelConfig(MODEL_PRESETS.stories110M!.config);
  assert.deepEqual([s110.hiddenSize, s110.intermediateSize, s110.numLayers, s110.numHeads, s110.vocabSize], [768, 2048, 12, 12, 32000]);
  assert.equal(numParams('llama2-7b'), 6_738_415_616); // Llama-2-7B
  assert.equal(numParams('llama3-1b-shape'), 1_235_814_400); // Llama-3.2-1B (tied)
  assert.equal(MODEL_PRESETS['llama2-7b']!.dtype, 'bf16');
});

test('random tensors are lazy producers with std 1/sqrt(fan_in) projections and norms near 1', () => {
  const c = parseModelConfig(MODEL_PRESETS['llama2-7b']!.config);
  const ts = randomTensors(c, 0, 'bf16'); // 6.7B parameters: must not be generated here
  assert.equal(ts.length, expectedWeights(c).size);
  assert.ok(ts.every((t) => typeof t.data === 'function'));
  const tiny = parseModelConfig(MODEL_PRESETS['tiny-llama']!.config);
  const stats = (name: string): { mean: number; std: number } => {
    const t = randomTensors(tiny, 3, 'f32').find((x) => x.name === name)!;
    const produced = (t.data as () => Iterable<ArrayBufferView>)();
    const vals: number[] = [];
    for (const chunk of produced) vals.push(...new Float32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength / 4));
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    return { mean, std: Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length) };
  };
  const q = stats('model.layers.0.self_attn.q_proj.weight');
  assert.ok(Math.abs(q.mean) < 0.01 && Math.abs(q.std - 1 / Math.sqrt(64)) < 0.01, JSON.stringify(q));
  const n = stats('model.layers.0.input_layernorm.weight');
  assert.ok(Math.abs(n.mean - 1) < 0.1 && n.std > 0.1 && n.std < 0.3, JSON.stringify(n));
});
