// config.json -> ModelConfig. The only file that knows Hugging Face config names. Strict: missing
// shape fields, bad values and unknown architectures throw typed errors naming the file and field;
// optional fields take the transformers defaults of the named architecture. Architectures differ only
// here (Qwen2: q/k/v bias; Qwen3: q/k norm; Mistral: sliding window); one DecoderModel runs them all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FloatDType } from '../runtime/dtype.js';
import { TokenmillError, fileError } from '../util/errors.js';
import type { Architecture, ModelConfig, RopeScaling } from './types.js';

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
];

/** transformers defaults per architecture for fields a config.json may omit. */
const DEFAULTS: Record<Architecture, { rmsNormEps: number; ropeTheta: number; maxPositionEmbeddings: number }> = {
  LlamaForCausalLM: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 2048 },
  MistralForCausalLM: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 4096 * 32 },
  Qwen2ForCausalLM: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 32768 },
  Qwen3ForCausalLM: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 32768 },
};

type Json = Record<string, unknown>;

/**
 * Upper bounds on shape fields, far above any published model (hidden 16384, 126 layers, vocab
 * 262144, 10M context) yet small enough that tables sized by them stay bounded.
 */
const SHAPE_FIELD_MAX: Readonly<Record<string, number>> = {
  hidden_size: 1 << 17,
  intermediate_size: 1 << 20,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1 << 12,
  vocab_size: 1 << 22,
  max_position_embeddings: 1 << 24,
  original_max_position_embeddings: 1 << 24,
  sliding_window: 1 << 24,
};

class Fields {
  constructor(
    readonly raw: Json,
    readonly file: string,
  ) {}

  missing(field: string): TokenmillError {
    return new TokenmillError('config_missing_field', `${this.file}: missing required field '${field}'`, {
      details: { file: this.file, field },
    });
  }

  invalid(field: string, why: string): TokenmillError {
    return new TokenmillError(
      'config_invalid',
      `${this.file}: field '${field}' ${why} (got ${JSON.stringify(this.raw[field]) ?? 'undefined'})`,
      { details: { file: this.file, field } },
    );
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  /** An absent field's fallback; absent without one is a missing-field error. */
  private fallbackOr<T>(field: string, fallback: T | undefined): T {
    if (fallback === undefined) throw this.missing(field);
    return fallback;
  }

  posInt(field: string, fallback?: number): number {
    if (!this.has(field)) return this.fallbackOr(field, fallback);
    const v = this.raw[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw this.invalid(field, 'must be a positive integer');
    // A lying size must fail here, not as an allocation of 2^31 layers' weight tables.
    const max = SHAPE_FIELD_MAX[field];
    if (max !== undefined && v > max) throw this.invalid(field, `exceeds ${max}, the most tokenmill accepts`);
    return v;
  }

  posNumber(field: string, fallback?: number): number {
    if (!this.has(field)) return this.fallbackOr(field, fallback);
    const v = this.raw[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.invalid(field, 'must be a positive number');
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    if (!this.has(field)) return fallback;
    const v = this.raw[field];
    if (typeof v !== 'boolean') throw this.invalid(field, 'must be true or false');
    return v;
  }

  /** A token id, a list of them, or null/absent. */
  tokenIds(field: string): number[] {
    if (!this.has(field)) return [];
    const v = this.raw[field];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0))
      throw this.invalid(field, 'must be a token id or a list of token ids');
    return list as number[];
  }
}

function parseTorchDType(f: Fields): FloatDType {
  const field = f.has('torch_dtype') ? 'torch_dtype' : 'dtype';
  if (!f.has(field)) return 'f32';
  const v = f.raw[field];
  if (v === 'float32') return 'f32';
  if (v === 'float16') return 'f16';
  if (v === 'bfloat16') return 'bf16';
  throw f.invalid(field, "must be 'float32', 'float16' or 'bfloat16'");
}

/**
 * Rope: legacy rope_theta + rope_scaling, or transformers 5's rope_parameters {rope_type,
 * rope_theta, factor, ...}. 'dynamic' NTK is the identity within max_position_embeddings (the
 * engine's context cap), so it parses as no scaling.
 */
function parseRope(f: Fields, defaultTheta: number, maxPositionEmbeddings: number): { theta: number; scaling: RopeScaling | null } {
  const field = f.has('rope_parameters') ? 'rope_parameters' : 'rope_scaling';
  if (!f.has(field)) return { theta: f.posNumber('rope_theta', defaultTheta), scaling: null };
  const rs = f.raw[field];
  if (typeof rs !== 'object' || Array.isArray(rs) || rs === null) throw f.invalid(field, 'must be an object or null');
  const r = new Fields(rs as Json, `${f.file} ${field}`);
  const theta =
    field === 'rope_parameters'
      ? r.posNumber('rope_theta', f.posNumber('rope_theta', defaultTheta))
      : f.posNumber('rope_theta', defaultTheta);
  const type = r.raw.rope_type ?? r.raw.type;
  if (type === 'default' || type === 'dynamic' || (type === undefined && field === 'rope_parameters')) return { theta, scaling: null };
  if (type === 'linear') return { theta, scaling: { type: 'linear', factor: r.posNumber('factor') } };
  if (type === 'llama3') {
    const scaling: RopeScaling = {
      type: 'llama3',
      factor: r.posNumber('factor'),
      lowFreqFactor: r.posNumber('low_freq_factor'),
      highFreqFactor: r.posNumber('high_freq_factor'),
      originalMaxPositionEmbeddings: r.posInt('original_max_position_embeddings', maxPositionEmbeddings),
    };
    if (scaling.highFreqFactor! <= scaling.lowFreqFactor!) throw r.invalid('high_freq_factor', 'must exceed low_freq_factor');
    return { theta, scaling };
  }
  if (type === undefined) throw r.missing('rope_type');
  throw f.invalid(field, "has an unsupported rope_type (supported: 'default', 'linear', 'llama3', 'dynamic')");
}

function parseArchitecture(f: Fields): Architecture {
  if (!f.has('architectures')) throw f.missing('architectures');
  const list = f.raw.architectures;
  if (!Array.isArray(list) || list.length === 0 || typeof list[0] !== 'string')
    throw f.invalid('architectures', 'must be a non-empty list of names');
  const name = list[0];
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(name)) {
    throw new TokenmillError(
      'unsupported_architecture',
      `${f.file}: architecture '${name}' is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
      {
        details: { file: f.file, architecture: name, supported: SUPPORTED_ARCHITECTURES },
      },
    );
  }
  return name as Architecture;
}

/** Sliding window: Mistral's sliding_window; Qwen2/3 only when use_sliding_window applies to every layer. */
function parseSlidingWindow(f: Fields, arch: Architecture, numLayers: number): number {
  if (arch === 'LlamaForCausalLM') return 0;
  if (arch === 'MistralForCausalLM') return f.posInt('sliding_window', 0);
  if (!f.bool('use_sliding_window', false)) return 0;
  const mwl = f.raw.max_window_layers ?? 0;
  if (typeof mwl !== 'number' || !Number.isSafeInteger(mwl) || mwl < 0)
    throw f.invalid('max_window_layers', 'must be a non-negative integer');
  const maxWindowLayers = mwl;
  if (maxWindowLayers >= numLayers) return 0; // layers below max_window_layers use full attention
  if (maxWindowLayers > 0) throw f.invalid('max_window_layers', 'mixes full and sliding-window layers, which is not supported');
  return f.posInt('sliding_window');
}

/** Parse a config.json object. `file` is used in error messages. */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TokenmillError('config_invalid', `${file}: must be a JSON object`, { details: { file } });
  }
  const f = new Fields(raw as Json, file);
  const architecture = parseArchitecture(f);
  const d = DEFAULTS[architecture];
  const hiddenSize = f.posInt('hidden_size');
  const numHeads = f.posInt('num_attention_heads');
  const numLayers = f.posInt('num_hidden_layers');
  const numKvHeads = f.posInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw f.invalid('num_key_value_heads', `must divide num_attention_heads (${numHeads})`);
  if (!f.has('head_dim') && hiddenSize % numHeads !== 0)
    throw f.invalid('hidden_size', `must be a multiple of num_attention_heads (${numHeads}) when head_dim is absent`);
  const headDim = f.posInt('head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw f.invalid('head_dim', 'must be even (rotary embedding pairs)');
  if (f.has('hidden_act') && f.raw.hidden_act !== 'silu') throw f.invalid('hidden_act', "must be 'silu'");
  if (f.bool('mlp_bias', false)) throw f.invalid('mlp_bias', 'true is not supported');
  // Llama/Qwen3 attention_bias puts a bias on o_proj too; Qwen2 always has q/k/v bias only.
  if (architecture !== 'Qwen2ForCausalLM' && f.bool('attention_bias', false)) throw f.invalid('attention_bias', 'true is not supported');
  const maxPositionEmbeddings = f.posInt('max_position_embeddings', d.maxPositionEmbeddings);
  const bos = f.tokenIds('bos_token_id');
  const rope = parseRope(f, d.ropeTheta, maxPositionEmbeddings);
  return {
    architecture,
    vocabSize: f.posInt('vocab_size'),
    hiddenSize,
    intermediateSize: f.posInt('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: f.posNumber('rms_norm_eps', d.rmsNormEps),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias: architecture === 'Qwen2ForCausalLM',
    qkNorm: architecture === 'Qwen3ForCausalLM',
    slidingWindow: parseSlidingWindow(f, architecture, numLayers),
    torchDType: parseTorchDType(f),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: f.tokenIds('eos_token_id'),
  };
}

/** Read and parse `path` (a file) or `<dir>/config.json`. */
export function loadModelConfig(dirOrFile: string): ModelConfig {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'config.json');
  return parseModelConfig(readJsonFile(path, 'config_invalid'), path);
}

/** Read a JSON file: file_not_found when absent, `badCode` when it is not valid JSON. */
export function readJsonFile(path: string, badCode: 'config_invalid'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fileError(e, `cannot read ${path}`, path);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenmillError(badCode, `${path}: not valid JSON: ${(e as Error).message}`, { cause: e, details: { file: path } });
  }
}
