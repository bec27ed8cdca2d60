// config.json / generation_config.json parsing: every architecture, llama3 rope scaling, Qwen3
// head_dim, defaults, and one typed error per kind of mistake (naming file and field).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelConfig, parseModelConfig, SUPPORTED_ARCHITECTURES } from '../../src/model/config.js';
import { loadGenerationConfig, parseGenerationConfig } from '../../src/model/generation-config.js';
import { TokenmillError } from '../../src/util/errors.js';

/** Llama-3.2-1B's config.json (abridged to the fields that matter). */
const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};
const LLAMA2_7B = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  intermediate_size: 11008,
  max_position_embeddings: 4096,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  vocab_size: 32000,
};
const MISTRAL_V01 = {
  architectures: ['MistralForCausalLM'],
  hidden_size: 4096,
  intermediate_size: 14336,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  vocab_size: 32000,
  torch_dtype: 'bfloat16',
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 131072,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_sliding_window: false,
  vocab_size: 151936,
};
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_size: 1024,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_sliding_window: false,
  vocab_size: 151936,
};

function code(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TokenmillError, `expected TokenmillError, got ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected a throw');
}

test('Llama 3.2: llama3 rope scaling, explicit head_dim, GQA, tied', () => {
  const c = parseModelConfig(LLAMA32_1B);
  assert.equal(c.architecture, 'LlamaForCausalLM');
  assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(c.headDim, 64);
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.torchDType, 'bf16');
  assert.equal(c.bosTokenId, 128000);
  assert.deepEqual(c.eosTokenIds, [128001]);
  assert.equal(c.slidingWindow, 0);
  // the older spelling "type" works too
  const old = parseModelConfig({ ...LLAMA32_1B, rope_scaling: { ...LLAMA32_1B.rope_scaling, rope_type: undefined, type: 'llama3' } });
  assert.equal(old.ropeScaling?.type, 'llama3');
});

test('transformers 5 rope_parameters: theta and scaling live together', () => {
  const { rope_scaling: rs, rope_theta: _t, ...rest } = LLAMA32_1B;
  const c = parseModelConfig({ ...rest, rope_parameters: { ...rs, rope_theta: 500000 } });
  assert.equal(c.ropeTheta, 500000);
  assert.deepEqual(c.ropeScaling, parseModelConfig(LLAMA32_1B).ropeScaling);
  const plain = parseModelConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
  assert.equal(plain.ropeTheta, 1e6);
  assert.equal(plain.ropeScaling, null);
  assert.equal(parseModelConfig({ ...LLAMA2_7B, rope_scaling: { type: 'dynamic', factor: 2 } }).ropeScaling, null);
  assert.equal(
    code(() => parseModelConfig({ ...rest, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } })).code,
    'config_invalid',
  );
});

test('Llama 2: defaults (head_dim = hidden/heads, kv heads, no scaling, untied), eos list', () => {
  const c = parseModelConfig(LLAMA2_7B);
  assert.equal(c.headDim, 128);
  assert.equal(c.numKvHeads, 32);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.attentionBias, false);
  assert.equal(c.qkNorm, false);
  assert.equal(c.torchDType, 'f16');
  const noKv = { ...LLAMA2_7B } as Record<string, unknown>;
  delete noKv.num_key_value_heads;
  assert.equal(parseModelConfig(noKv).numKvHeads, 32);
  assert.deepEqual(parseModelConfig({ ...LLAMA2_7B, eos_token_id: [128001, 128008, 128009] }).eosTokenIds, [128001, 128008, 128009]);
  assert.equal(parseModelConfig({ ...LLAMA2_7B, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling?.factor, 2);
});

test('Mistral: sliding_window number or null', () => {
  assert.equal(parseModelConfig(MISTRAL_V01).slidingWindow, 4096);
  assert.equal(parseModelConfig({ ...MISTRAL_V01, sliding_window: null }).slidingWindow, 0);
  assert.equal(parseModelConfig(MISTRAL_V01).maxPositionEmbeddings, 131072); // transformers default
});

test('Qwen2: q/k/v bias; sliding window only when enabled for all layers', () => {
  const c = parseModelConfig(QWEN25_05B);
  assert.equal(c.attentionBias, true);
  assert.equal(c.qkNorm, false);
  assert.equal(c.slidingWindow, 0);
  assert.equal(c.headDim, 64);
  assert.equal(parseModelConfig({ ...QWEN25_05B, use_sliding_window: true, max_window_layers: 24 }).slidingWindow, 0);
  assert.equal(
    parseModelConfig({ ...QWEN25_05B, use_sliding_window: true, max_window_layers: 0, sliding_window: 4096 }).slidingWindow,
    4096,
  );
  assert.equal(code(() => parseModelConfig({ ...QWEN25_05B, use_sliding_window: true })).code, 'config_invalid');
});

test('Qwen3: q/k norm and head_dim different from hidden/heads', () => {
  const c = parseModelConfig(QWEN3_06B);
  assert.equal(c.qkNorm, true);
  assert.equal(c.attentionBias, false);
  assert.equal(c.headDim, 128);
  assert.notEqual(c.headDim, c.hiddenSize / c.numHeads);
  assert.equal(c.slidingWindow, 0);
  assert.equal(c.ropeScaling, null);
});

test('missing required fields: config_missing_field naming the file and field', () => {
  for (const field of ['architectures', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size']) {
    const raw = { ...LLAMA2_7B } as Record<string, unknown>;
    delete raw[field];
    const e = code(() => parseModelConfig(raw, '/m/config.json'));
    assert.equal(e.code, 'config_missing_field', field);
    assert.match(e.message, /\/m\/config\.json/);
    assert.ok(e.message.includes(`'${field}'`), e.message);
  }
  const e = code(() => parseModelConfig({ ...LLAMA32_1B, rope_scaling: { rope_type: 'llama3', factor: 8 } }));
  assert.equal(e.code, 'config_missing_field');
  assert.match(e.message, /low_freq_factor/);
});

test('bad values and bad JSON: config_invalid', () => {
  const bad: Record<string, unknown>[] = [
    { hidden_size: 0 },
    { hidden_size: 'big' },
    { num_hidden_layers: 1.5 },
    { num_key_value_heads: 5 },
    { hidden_size: 4000, num_attention_heads: 32 },
    { head_dim: 7 },
    { rms_norm_eps: -1 },
    { tie_word_embeddings: 'yes' },
    { rope_scaling: { rope_type: 'yarn', factor: 4 } },
    { rope_scaling: 3 },
    { hidden_act: 'gelu' },
    { torch_dtype: 'int8' },
    { eos_token_id: 'x' },
    { attention_bias: true },
    { architectures: [] },
  ];
  for (const patch of bad)
    assert.equal(code(() => parseModelConfig({ ...LLAMA2_7B, ...patch })).code, 'config_invalid', JSON.stringify(patch));
  assert.equal(code(() => parseModelConfig([1])).code, 'config_invalid');
  const dir = mkdtempSync(join(tmpdir(), 'tm-cfg-'));
  try {
    writeFileSync(join(dir, 'config.json'), '{"architectures": [');
    assert.equal(code(() => loadModelConfig(dir)).code, 'config_invalid');
    assert.equal(code(() => loadModelConfig(join(dir, 'nope'))).code, 'file_not_found');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shape fields are bounded: the limit loads, limit + 1 is config_invalid naming the field', () => {
  // num_hidden_layers 2^31 once sent the loader into building a 2^31-layer weight table (heap OOM).
  const limits: [string, number, Record<string, unknown>][] = [
    ['num_hidden_layers', 1024, {}],
    ['vocab_size', 1 << 22, {}],
    ['intermediate_size', 1 << 20, {}],
    ['max_position_embeddings', 1 << 24, {}],
    ['hidden_size', 1 << 17, { head_dim: 128 }],
    ['head_dim', 1 << 12, {}],
    ['num_attention_heads', 1024, { head_dim: 128, num_key_value_heads: 1 }],
    ['num_key_value_heads', 1024, { num_attention_heads: 1024, head_dim: 128 }],
  ];
  for (const [field, max, extra] of limits) {
    const ok = parseModelConfig({ ...LLAMA2_7B, ...extra, [field]: max });
    assert.ok(ok.numLayers > 0, field);
    const e = code(() => parseModelConfig({ ...LLAMA2_7B, ...extra, [field]: max + (field === 'head_dim' ? 2 : 1) }));
    assert.equal(e.code, 'config_invalid', field);
    assert.match(e.message, new RegExp(`config\\.json: field '${field}' exceeds ${max}`));
  }
  const mistral = code(() => parseModelConfig({ ...MISTRAL_V01, sliding_window: (1 << 24) + 1 }));
  assert.match(mistral.message, /sliding_window/);
});

test('unknown architecture: unsupported_architecture listing the supported ones', () => {
  const e = code(() => parseModelConfig({ ...LLAMA2_7B, architectures: ['GPT2LMHeadModel'] }));
  assert.equal(e.code, 'unsupported_architecture');
  assert.match(e.message, /GPT2LMHeadModel/);
  for (const a of SUPPORTED_ARCHITECTURES) assert.ok(e.message.includes(a));
});

test('generation_config.json: eos number or list, sampling defaults, optional file', () => {
  const g = parseGenerationConfig({ bos_token_id: 128000, eos_token_id: [128001, 128009], do_sample: true, temperature: 0.6, top_p: 0.9 });
  assert.deepEqual(g.eosTokenIds, [128001, 128009]);
  assert.equal(g.bosTokenId, 128000);
  assert.equal(g.temperature, 0.6);
  assert.equal(g.topP, 0.9);
  assert.equal(g.topK, undefined);
  assert.deepEqual(parseGenerationConfig({ eos_token_id: 2 }).eosTokenIds, [2]);
  assert.equal(code(() => parseGenerationConfig({ top_p: 2 })).code, 'config_invalid');
  assert.equal(code(() => parseGenerationConfig({ eos_token_id: [1, 'a'] })).code, 'config_invalid');
  const dir = mkdtempSync(join(tmpdir(), 'tm-gen-'));
  try {
    assert.deepEqual(loadGenerationConfig(dir).eosTokenIds, []);
    writeFileSync(join(dir, 'generation_config.json'), 'nope');
    assert.equal(code(() => loadGenerationConfig(dir)).code, 'config_invalid');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
