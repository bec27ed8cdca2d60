// Named shapes for seeded random models (scripts/gen-model.ts, tests, benches): HF config.json
// objects plus the dtype each is generated in by default. Tiny presets keep tests to milliseconds.
import type { RandomWeightDType } from './random-model.js';

export interface ModelPreset {
  readonly description: string;
  readonly dtype: RandomWeightDType;
  /** config.json contents (HF names). */
  readonly config: Record<string, unknown>;
}

const tinyBase = {
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 512,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
};

const llama2c = (dim: number, hidden: number, layers: number, heads: number, seqLen: number) => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: dim,
  intermediate_size: hidden,
  num_hidden_layers: layers,
  num_attention_heads: heads,
  num_key_value_heads: heads,
  vocab_size: 32000,
  max_position_embeddings: seqLen,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
});

export const MODEL_PRESETS: Readonly<Record<string, ModelPreset>> = {
  'tiny-llama': {
    description: 'Llama 2 style, GQA 4/2, tied embeddings, 2 layers, D=64',
    dtype: 'f32',
    config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...tinyBase, tie_word_embeddings: true },
  },
  'tiny-llama3': {
    description: 'Llama 3.1 style: llama3 rope scaling (all three frequency bands), theta 5e5, untied',
    dtype: 'f32',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...tinyBase,
      max_position_embeddings: 16384,
      rope_theta: 500000,
      tie_word_embeddings: false,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    },
  },
  'tiny-mistral': {
    description: 'Mistral style with a 16-token sliding window, untied',
    dtype: 'f32',
    config: { architectures: ['MistralForCausalLM'], model_type: 'mistral', ...tinyBase, sliding_window: 16, tie_word_embeddings: false },
  },
  'tiny-qwen2': {
    description: 'Qwen2 style: q/k/v bias, theta 1e6, tied',
    dtype: 'f32',
    config: {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      ...tinyBase,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: 4096,
      max_window_layers: 2,
    },
  },
  'tiny-qwen3': {
    description: 'Qwen3 style: q/k norm, explicit head_dim 32 (H*Dh = 128 != D = 64), tied',
    dtype: 'f32',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      ...tinyBase,
      head_dim: 32,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    },
  },
  stories15M: { description: 'llama2.c stories15M shape (288/768, 6 layers, 6 heads)', dtype: 'f32', config: llama2c(288, 768, 6, 6, 256) },
  stories110M: {
    description: 'llama2.c stories110M shape (768/2048, 12 layers, 12 heads)',
    dtype: 'f32',
    config: llama2c(768, 2048, 12, 12, 1024),
  },
  'llama2-7b': {
    description: 'Llama-2-7B shape (4096/11008, 32 layers, 32 heads), bf16, ~13.5 GB',
    dtype: 'bf16',
    config: { ...llama2c(4096, 11008, 32, 32, 4096), tie_word_embeddings: false },
  },
  'llama3-1b-shape': {
    description: 'Llama-3.2-1B shape (2048/8192, 16 layers, 32/8 heads, vocab 128256, llama3 rope), bf16, ~2.5 GB',
    dtype: 'bf16',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      hidden_act: 'silu',
      tie_word_embeddings: true,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    },
  },
};

export const TINY_PRESETS = ['tiny-llama', 'tiny-llama3', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3'] as const;
