// writeRandomModel: a deterministic, seeded random-weight checkpoint (config.json, model.safetensors
// or shards, generation_config.json, synthetic tokenizer) for any supported config. Each tensor is
// generated from its own seed (seed + name) in chunks while it is written: never the whole model.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenmillError } from '../util/errors.js';
import { writeSyntheticTokenizer } from './convert/synthetic-tokenizer.js';
import { importTokenizerDir, type ImportedTokenizer } from './convert/tokenizer-import.js';
import { parseModelConfig } from './config.js';
import { MODEL_PRESETS } from './model-presets.js';
import { GaussianStream, hashSeed } from './prng.js';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';
import { f32ToHalf } from '../runtime/dtype.js';
import type { ModelConfig } from './types.js';
import { expectedWeights } from './weights.js';

export type RandomWeightDType = 'f32' | 'f16' | 'bf16';

/**
 * How the weights are drawn. 'default': the historical init (small embeddings, 1/sqrt(fan_in)
 * projections everywhere): a deep model has near-tied logits (f32 and bf16 runs of a 32-layer
 * model disagree on the top-1 of ~2-3% of rows at hidden 128-256, vocab 4096; ~16% for the 7B
 * shape in PyTorch), fine for op-level checks. 'well-conditioned': deep
 * models stay non-chaotic and peaked, so bf16-vs-f32 top-1 agreement is a meaningful check:
 * embeddings N(0, 1) (they dominate the residual stream), q/k/v/gate/up 1/sqrt(fan_in), the
 * residual-writing o_proj/down_proj also scaled by 1/sqrt(2 * layers), norms 1 + N(0, 0.1), biases
 * N(0, 0.1); an untied lm_head is the embedding rolled by one row over sqrt(hidden) (row v = embed
 * row v+1), so the model leans toward predicting token x-1 after token x (other logits ~N(0, 1),
 * the favoured one ~ sqrt(hidden) * correlation, the rest of the residual stream still moving every
 * logit). A tied model leans toward repeating its input. See docs/kernels.md, "Well-conditioned
 * random models".
 */
export type RandomInit = 'default' | 'well-conditioned';

export interface RandomModelOptions {
  readonly seed?: number;
  /** Stored dtype of every tensor (default f32). */
  readonly dtype?: RandomWeightDType;
  /** Write tokenizer.json + tokenizer_config.json (default true): the synthetic tokenizer, or tokenizerDir's. */
  readonly tokenizer?: boolean;
  /**
   * A real tokenizer to use instead of the synthetic one (an HF directory with tokenizer.json, or a
   * llama2.c tokenizer.bin directory; see convert/tokenizer-import.ts). vocab_size becomes at least
   * the tokenizer's; bos/eos ids come from its config.
   */
  readonly tokenizerDir?: string;
  /** With tokenizerDir: a chat template (Jinja source) that replaces the tokenizer's own. */
  readonly chatTemplate?: string;
  /** With tokenizerDir: an exact vocab_size (>= the tokenizer's), e.g. to pad like real checkpoints. */
  readonly vocabSize?: number;
  /** Split into model-0000i-of-0000N.safetensors + index.json above this many bytes per shard. */
  readonly maxShardBytes?: number;
  /** Weight init (default 'default'); see RandomInit. */
  readonly init?: RandomInit;
}

/** Synthetic tokenizer's ids (see convert/synthetic-tokenizer.ts): bos <s>=0, eos <|im_end|>=3 and </s>=1. */
const BOS = 0;
const EOS = [3, 1];
const CHUNK_ELEMS = 1 << 20;

/** How a tensor is initialised: mean + std * N(0, 1). */
export function initOf(
  name: string,
  shape: readonly number[],
  c: ModelConfig,
  init: RandomInit = 'default',
): { mean: number; std: number } {
  if (init === 'well-conditioned') {
    if (name.endsWith('norm.weight')) return { mean: 1, std: 0.1 };
    if (name.endsWith('.bias')) return { mean: 0, std: 0.1 };
    if (name === 'model.embed_tokens.weight') return { mean: 0, std: 1 };
    if (name === 'lm_head.weight') return { mean: 0, std: 1 / Math.sqrt(c.hiddenSize) }; // written as the rolled embedding
    const std = 1 / Math.sqrt(shape[1]!);
    const residual = name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight');
    return { mean: 0, std: residual ? std / Math.sqrt(2 * c.numLayers) : std };
  }
  if (name.endsWith('norm.weight')) return { mean: 1, std: 0.2 }; // norms around 1, not exactly 1
  if (name.endsWith('.bias')) return { mean: 0, std: 0.5 };
  // embed / lm_head: logits std about 2 (non-degenerate, yet a clear argmax)
  if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') return { mean: 0, std: 2 / Math.sqrt(c.hiddenSize) };
  return { mean: 0, std: 1 / Math.sqrt(shape[1]!) }; // projections: std 1/sqrt(fan_in)
}

const ST = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

function* tensorChunks(numel: number, mean: number, std: number, seed: number, dtype: RandomWeightDType): Generator<ArrayBufferView> {
  const g = new GaussianStream(seed);
  const f32 = new Float32Array(Math.min(numel, CHUNK_ELEMS));
  const half = new Uint16Array(dtype === 'f32' ? 0 : f32.length); // reused: the writer copies each chunk out before the next
  for (let done = 0; done < numel; done += f32.length) {
    const n = Math.min(f32.length, numel - done);
    const vals = f32.subarray(0, n);
    for (let i = 0; i < n; i++) vals[i] = mean + std * g.next();
    yield dtype === 'f32' ? vals : f32ToHalf(vals, dtype, half.subarray(0, n));
  }
}

/**
 * Well-conditioned lm_head [V, D]: the embedding's N(0, 1) stream (same seed) rolled by one row and
 * scaled: row v = scale * embed row (v + 1) % V. Streams: row 0 is kept and written last.
 */
function* rolledEmbeddingChunks(V: number, D: number, scale: number, seed: number, dtype: RandomWeightDType): Generator<ArrayBufferView> {
  const g = new GaussianStream(seed);
  const first = new Float32Array(D);
  for (let i = 0; i < D; i++) first[i] = g.next();
  const rows = Math.max(1, Math.floor(CHUNK_ELEMS / D));
  const f32 = new Float32Array(rows * D);
  const half = new Uint16Array(dtype === 'f32' ? 0 : f32.length);
  for (let r = 1; r <= V; r += rows) {
    const n = Math.min(rows, V + 1 - r) * D;
    const vals = f32.subarray(0, n);
    for (let i = 0; i < n; i++) {
      const row = r + Math.floor(i / D);
      vals[i] = scale * (row < V ? g.next() : first[i % D]!);
    }
    yield dtype === 'f32' ? vals : f32ToHalf(vals, dtype, half.subarray(0, n));
  }
}

/** The tensors of a random model, each a lazy producer (nothing is generated until written). */
export function randomTensors(c: ModelConfig, seed: number, dtype: RandomWeightDType, init: RandomInit = 'default'): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const [name, shape] of expectedWeights(c)) {
    const { mean, std } = initOf(name, shape, c, init);
    const numel = shape.reduce((a, b) => a * b, 1);
    const data =
      init === 'well-conditioned' && name === 'lm_head.weight'
        ? () => rolledEmbeddingChunks(shape[0]!, shape[1]!, std, hashSeed(seed, 'model.embed_tokens.weight'), dtype)
        : () => tensorChunks(numel, mean, std, hashSeed(seed, name), dtype);
    out.push({ name, dtype: ST[dtype], shape, data });
  }
  return out;
}

/** bos/eos for config.json and generation_config.json: the real tokenizer's, or the synthetic one's. */
function specialIds(
  hfConfig: Record<string, unknown>,
  tok: ImportedTokenizer | null,
  dir: string,
  vocabSize?: number,
): {
  full: Record<string, unknown>;
  genEos: (c: ModelConfig) => number[];
} {
  if (tok === null) {
    const full = { bos_token_id: BOS, eos_token_id: EOS[0], ...hfConfig };
    return { full, genEos: (c) => (c.eosTokenIds.length > 0 ? [...new Set([...c.eosTokenIds, ...EOS])] : EOS) };
  }
  const fromConfig = typeof hfConfig.vocab_size === 'number' ? hfConfig.vocab_size : 0;
  const vocab = vocabSize ?? Math.max(fromConfig, tok.vocabSize);
  if (vocab < tok.vocabSize) {
    throw new TokenmillError('invalid_argument', `vocab size ${vocab} is smaller than the tokenizer's ${tok.vocabSize} ids (${dir})`, {
      param: 'vocab_size',
    });
  }
  const eos = tok.eosTokenIds.length === 1 ? tok.eosTokenIds[0] : [...tok.eosTokenIds];
  const full = { ...hfConfig, vocab_size: vocab, bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenIds.length === 0 ? null : eos };
  return { full, genEos: () => [...tok.eosTokenIds] };
}

/**
 * Write a random model for an HF-style config object into dir. bos/eos ids default to the
 * synthetic tokenizer's; with opts.tokenizerDir they (and the vocab size) come from that tokenizer.
 * Returns the parsed ModelConfig.
 */
export function writeRandomModel(dir: string, hfConfig: Record<string, unknown>, opts: RandomModelOptions = {}): ModelConfig {
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'f32';
  const torchDType = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype];
  const realTok =
    opts.tokenizerDir !== undefined && (opts.tokenizer ?? true)
      ? importTokenizerDir(opts.tokenizerDir, dir, { chatTemplate: opts.chatTemplate })
      : null;
  const ids = specialIds(hfConfig, realTok, opts.tokenizerDir ?? dir, opts.vocabSize);
  const full = { ...ids.full, torch_dtype: torchDType };
  const config = parseModelConfig(full, `${dir}/config.json`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(full, null, 2) + '\n');
    const gen = { bos_token_id: config.bosTokenId, eos_token_id: ids.genEos(config), do_sample: true, temperature: 0.7, top_p: 0.9 };
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  } catch (e) {
    throw new TokenmillError('io_error', `writing ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const init = opts.init ?? 'default';
  const metadata: Record<string, string> = { format: 'pt', generator: 'tokenmill writeRandomModel', seed: String(seed) };
  if (init !== 'default') metadata.init = init;
  const tensors = randomTensors(config, seed, dtype, init);
  if (opts.maxShardBytes === undefined) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, metadata);
  } else {
    writeShards(dir, tensors, opts.maxShardBytes, metadata);
  }
  if ((opts.tokenizer ?? true) && realTok === null) writeSyntheticTokenizer(dir, config.vocabSize);
  return config;
}

function bytesOf(t: TensorToWrite): number {
  return t.shape.reduce((a, b) => a * b, t.dtype === 'F32' ? 4 : 2);
}

function writeShards(dir: string, tensors: TensorToWrite[], maxShardBytes: number, metadata: Record<string, string>): void {
  const shards: TensorToWrite[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const b = bytesOf(t);
    if (size > 0 && size + b > maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(t);
    size += b;
  }
  const n = shards.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((group, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    writeSafetensors(join(dir, file), group, metadata);
    for (const t of group) {
      weightMap[t.name] = file;
      total += bytesOf(t);
    }
  });
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n',
  );
}

export interface TinyModelOptions extends Omit<RandomModelOptions, 'tokenizerDir'> {
  /** A MODEL_PRESETS name (default 'tiny-llama'; 'tiny-llama3' and 'tiny-qwen3' match those tokenizers). */
  readonly preset?: string;
  /** config.json fields over the preset's (e.g. { num_hidden_layers: 1 }). */
  readonly patch?: Readonly<Record<string, unknown>>;
  /** Where to write (default: a new directory under the OS temp dir). */
  readonly dir?: string;
}

export interface TinyModel {
  readonly dir: string;
  readonly config: ModelConfig;
  /** Delete the directory. */
  remove(): void;
}

/**
 * A tiny random-weight model (a tiny preset's shape) with a real tokenizer and its chat template:
 * vocab_size is the tokenizer's, bos/eos come from its config. For tests: a Qwen3 or Llama 3 vocab
 * model at D=64, 2 layers writes in about a second.
 */
export function makeTinyModel(tokenizerDir: string, opts: TinyModelOptions = {}): TinyModel {
  const name = opts.preset ?? 'tiny-llama';
  const preset = MODEL_PRESETS[name];
  if (preset === undefined)
    throw new TokenmillError('invalid_argument', `preset ${name}: one of ${Object.keys(MODEL_PRESETS).join(', ')}`, { param: 'preset' });
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tm-tiny-'));
  const { vocab_size: _drop, ...shape } = preset.config;
  const config = writeRandomModel(dir, { ...shape, ...opts.patch }, { seed: 1, ...opts, tokenizerDir });
  return { dir, config, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
