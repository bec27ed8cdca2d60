// A GGUF file as a model source, read as it is (no conversion to a directory): which path holds one
// (a .gguf file, or a directory holding exactly one and no config.json), its ModelConfig from the
// `<arch>.*` metadata (llama, mistral, qwen2, qwen3; validated by parseModelConfig as config.json
// would be), and its tokenizer + chat template from `tokenizer.*` metadata. Weights: gguf-weights.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../util/errors.js';
import { parseModelConfig } from './config.js';
import { fileSource, parseGguf, type ByteSource, type GgufFile, type GgufTensorInfo, type GgufValue } from './convert/gguf-reader.js';
import { inferLlama3RopeScaling } from './convert/gguf.js';
import { ggufTokenizerFiles } from './convert/gguf-tokenizer.js';
import { EMPTY_GENERATION_CONFIG, type GenerationConfig } from './generation-config.js';
import { parseTokenizerConfig } from './tokenizer-config.js';
import { tokenizerFromText, type ModelTokenizer } from './tokenizer.js';
import type { ModelConfig } from './types.js';

const HF_ARCH: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/** GGUF llama/mistral store Q/K rows interleaved per head (llama.cpp's rope); qwen2/qwen3 do not. */
export function ggufPermutesRotary(arch: string): boolean {
  return arch === 'llama' || arch === 'mistral';
}

/** The GGUF file a --model path names, or null when it is a model directory (config.json). */
export function resolveGgufPath(path: string): string | null {
  if (!existsSync(path)) return null;
  const st = statSync(path);
  if (st.isFile()) return path.toLowerCase().endsWith('.gguf') ? path : null;
  if (!st.isDirectory() || existsSync(join(path, 'config.json'))) return null;
  const ggufs = readdirSync(path).filter((f) => f.toLowerCase().endsWith('.gguf'));
  if (ggufs.length > 1)
    throw new TokenmillError('invalid_argument', `${path} holds ${ggufs.length} .gguf files (${ggufs.join(', ')}); name one with --model`, {
      details: { dir: path },
    });
  return ggufs.length === 1 ? join(path, ggufs[0]!) : null;
}

function bad(file: string, why: string, tensor?: string): TokenmillError {
  return new TokenmillError('gguf_invalid', `${file}: ${why}`, { details: tensor ? { file, tensor } : { file } });
}

export interface GgufModelSource {
  readonly file: string;
  readonly gguf: GgufFile;
  readonly arch: string;
  readonly config: ModelConfig;
  readonly generationConfig: GenerationConfig;
}

function num(g: GgufFile, key: string): number | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw bad(g.path, `${key} must be a number, got ${typeof v}`);
  return v;
}

function tokenIdOf(g: GgufFile, key: string): number | undefined {
  const v = g.metadata.get(key);
  return typeof v === 'number' ? v : undefined;
}

/** Read an F32 [n] tensor (rope factors) from the file, checked. */
function readF32(src: ByteSource, t: GgufTensorInfo): Float32Array {
  return new Float32Array(src.read(t.fileOffset, t.sizeBytes).slice().buffer, 0, t.numel);
}

/** config.json fields from the metadata, then parseModelConfig's validation. */
function configOf(g: GgufFile, src: ByteSource, arch: string): ModelConfig {
  const p = (k: string): number | undefined => num(g, `${arch}.${k}`);
  const emb = g.tensors.get('token_embd.weight');
  if (emb?.shape.length !== 2) throw bad(g.path, 'missing 2-D token_embd.weight', 'token_embd.weight');
  const raw: Record<string, unknown> = {
    architectures: [HF_ARCH[arch]],
    hidden_size: p('embedding_length'),
    intermediate_size: p('feed_forward_length'),
    num_hidden_layers: p('block_count'),
    num_attention_heads: p('attention.head_count'),
    num_key_value_heads: p('attention.head_count_kv') ?? p('attention.head_count'),
    vocab_size: emb.shape[0],
    max_position_embeddings: p('context_length'),
    rms_norm_eps: p('attention.layer_norm_rms_epsilon'),
    rope_theta: p('rope.freq_base'),
    tie_word_embeddings: !g.tensors.has('output.weight'),
    torch_dtype: 'float32',
  };
  const keyLen = p('attention.key_length');
  if (keyLen !== undefined) raw.head_dim = keyLen;
  const ropeDims = p('rope.dimension_count');
  const headDim = keyLen ?? (raw.hidden_size as number) / (raw.num_attention_heads as number);
  if (ropeDims !== undefined && ropeDims !== headDim)
    throw bad(g.path, `partial rotary (${arch}.rope.dimension_count ${ropeDims} < head size ${headDim}) is not supported`);
  const window = p('attention.sliding_window');
  if (window !== undefined && window > 0 && arch === 'mistral') raw.sliding_window = window;
  const scaling = g.metadata.get(`${arch}.rope.scaling.type`);
  const factor = p('rope.scaling.factor');
  if (scaling === 'linear' && factor !== undefined) raw.rope_scaling = { rope_type: 'linear', factor };
  else if (scaling !== undefined && scaling !== 'none') throw bad(g.path, `rope scaling '${String(scaling)}' is not supported`);
  const freqs = g.tensors.get('rope_freqs.weight');
  if (freqs) {
    if (freqs.typeName !== 'F32' || freqs.numel !== headDim / 2)
      throw bad(g.path, 'rope_freqs.weight must be F32 [head_dim/2]', 'rope_freqs.weight');
    const s = inferLlama3RopeScaling(readF32(src, freqs), headDim, (raw.rope_theta as number | undefined) ?? 10000);
    if (!s) throw bad(g.path, 'rope_freqs.weight does not match llama3 rope scaling (low 1, high 4, original 8192)', 'rope_freqs.weight');
    raw.rope_scaling = s;
  }
  const bos = tokenIdOf(g, 'tokenizer.ggml.bos_token_id');
  const eos = tokenIdOf(g, 'tokenizer.ggml.eos_token_id');
  if (bos !== undefined) raw.bos_token_id = bos;
  if (eos !== undefined) raw.eos_token_id = eos;
  for (const [k, v] of Object.entries(raw)) if (v === undefined) delete raw[k];
  return parseModelConfig(raw, `${g.path} (${arch}.* metadata)`);
}

/** Open, validate and describe a GGUF model file (the tensor data is not read, except rope factors). */
export function openGgufModel(file: string): GgufModelSource {
  const src = fileSource(file);
  try {
    const gguf = parseGguf(src, file);
    const arch = gguf.metadata.get('general.architecture');
    if (typeof arch !== 'string' || HF_ARCH[arch] === undefined) {
      throw new TokenmillError(
        'unsupported_architecture',
        `${file}: GGUF architecture '${String(arch)}' is not supported (${Object.keys(HF_ARCH).join(', ')})`,
        { details: { file } },
      );
    }
    const config = configOf(gguf, src, arch);
    const generationConfig: GenerationConfig = {
      ...EMPTY_GENERATION_CONFIG,
      bosTokenId: config.bosTokenId,
      eosTokenIds: config.eosTokenIds,
    };
    return { file, gguf, arch, config, generationConfig };
  } finally {
    src.close();
  }
}

/** The tokenizer (and chat template) the file's metadata describes; tokenizer_invalid when it has none. */
export function loadGgufTokenizer(file: string, meta?: ReadonlyMap<string, GgufValue>, maxLen = 2048): ModelTokenizer {
  const m = meta ?? openGgufModel(file).gguf.metadata;
  const files = ggufTokenizerFiles(m, maxLen, file);
  if (files === null)
    throw new TokenmillError('tokenizer_invalid', `${file}: the GGUF file has no tokenizer (tokenizer.ggml.model is absent)`);
  const label = `${file} (tokenizer.ggml.*)`;
  return tokenizerFromText(
    JSON.stringify(files.tokenizerJson),
    label,
    parseTokenizerConfig(files.tokenizerConfig as Record<string, unknown>, label),
  );
}
