// convertGguf: a Llama-architecture GGUF (F32/F16/BF16 tensors) with its embedded tokenizer -> a
// standard HF Llama directory. Q/K rows are stored interleaved in GGUF (as in llama2.c) and are
// permuted to HF's rotate_half layout. Quantized tensor types are rejected (gguf_invalid).
import { TokenmillError } from '../../util/errors.js';
import type { StDType, TensorToWrite } from '../safetensors.js';
import { fileSource, parseGguf, type ByteSource, type GgufFile, type GgufTensorInfo } from './gguf-reader.js';
import { ggufTokenizerFiles } from './gguf-tokenizer.js';
import { layerName, permuteRotaryRows, writeHfLlamaDir, writeTokenizerFiles, type HfLlamaSpec } from './hf-llama-writer.js';

export { parseGguf, readGgufFile, memorySource, GGML_TYPES } from './gguf-reader.js';
export type { GgufFile, GgufTensorInfo, GgufValue, ByteSource } from './gguf-reader.js';

const LAYER_TENSORS = {
  attn_norm: 'attnNorm',
  attn_q: 'wq',
  attn_k: 'wk',
  attn_v: 'wv',
  attn_output: 'wo',
  ffn_norm: 'ffnNorm',
  ffn_gate: 'w1',
  ffn_down: 'w2',
  ffn_up: 'w3',
} as const;
const ST_DTYPE: Record<string, StDType> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

export interface GgufConversion {
  readonly spec: HfLlamaSpec;
  readonly numTensors: number;
  readonly hasTokenizer: boolean;
}

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('gguf_invalid', `${file}: ${why}`, { details: { file } });
}

function metaInt(g: GgufFile, key: string, dflt?: number): number {
  const v = g.metadata.get(key);
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(g.path, `${key} must be a positive integer, got ${String(v)}`);
  return v;
}

function metaFloat(g: GgufFile, key: string, dflt: number): number {
  const v = g.metadata.get(key);
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(g.path, `${key} must be a positive number`);
  return v;
}

function readTensor(src: ByteSource, t: GgufTensorInfo): Float32Array | Uint16Array {
  let bytes = src.read(t.fileOffset, t.sizeBytes);
  // Small reads are views into the source's chunk cache: copy them (also aligns the buffer).
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  return t.typeName === 'F32' ? new Float32Array(bytes.buffer, 0, t.numel) : new Uint16Array(bytes.buffer, 0, t.numel);
}

/** Byte-compare two tensors chunk by chunk (an untied classifier differs in its first chunk). */
function sameBytes(src: ByteSource, a: GgufTensorInfo, b: GgufTensorInfo): boolean {
  if (a.type !== b.type || a.sizeBytes !== b.sizeBytes) return false;
  const CHUNK = 1 << 19;
  for (let o = 0; o < a.sizeBytes; o += CHUNK) {
    const n = Math.min(CHUNK, a.sizeBytes - o);
    const x = src.read(a.fileOffset + o, n).slice(); // the source may reuse its buffer on the next read
    if (Buffer.compare(x, src.read(b.fileOffset + o, n)) !== 0) return false;
  }
  return true;
}

/**
 * llama.cpp stores Llama 3.1-style rope scaling as per-frequency divisors (rope_freqs.weight, f32
 * [Dh/2]). Recover HF's llama3 parameters by checking the standard ones (low 1, high 4, original
 * 8192, factor = the largest divisor) against the stored divisors; anything else is rejected.
 */
export function inferLlama3RopeScaling(divisors: Float32Array, headDim: number, theta: number): Record<string, unknown> | null {
  const [low, high, orig] = [1, 4, 8192];
  // Per dim: its smoothing weight s (1 = unscaled, 0 = divided by factor): 1/divisor = (1-s)/factor + s.
  const weights = Array.from(divisors, (_, i) => {
    const wavelen = 2 * Math.PI * theta ** ((2 * i) / headDim);
    return wavelen < orig / high ? 1 : wavelen > orig / low ? 0 : (orig / wavelen - low) / (high - low);
  });
  const k = weights.findIndex((w) => w < 1);
  if (k < 0) return divisors.every((d) => Math.abs(d - 1) <= 1e-3) ? { rope_type: 'default' } : null;
  const factor = (1 - weights[k]!) / (1 / divisors[k]! - weights[k]!);
  if (!Number.isFinite(factor) || factor < 1) return null;
  for (let i = 0; i < divisors.length; i++) {
    const want = 1 / ((1 - weights[i]!) / factor + weights[i]!);
    if (Math.abs(want - divisors[i]!) > 1e-3 * want) return null;
  }
  const rounded = Math.abs(factor - Math.round(factor)) < 1e-3 ? Math.round(factor) : factor;
  return { rope_type: 'llama3', factor: rounded, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: orig };
}

function llamaSpec(
  g: GgufFile,
  vocabSize: number,
  tied: boolean,
  torchDtype: HfLlamaSpec['torchDtype'],
  bos: number | null,
  eos: number | null,
): HfLlamaSpec {
  const hiddenSize = metaInt(g, 'llama.embedding_length');
  const numHeads = metaInt(g, 'llama.attention.head_count');
  const numKvHeads = metaInt(g, 'llama.attention.head_count_kv', numHeads);
  if (hiddenSize % numHeads !== 0 || numHeads % numKvHeads !== 0) throw bad(g.path, 'head counts do not divide the embedding length');
  const headDim = metaInt(g, 'llama.attention.key_length', hiddenSize / numHeads);
  if (metaInt(g, 'llama.rope.dimension_count', headDim) !== headDim)
    throw bad(g.path, 'partial rotary (rope.dimension_count < head size) is not supported');
  const scalingType = g.metadata.get('llama.rope.scaling.type');
  const factor = g.metadata.get('llama.rope.scaling.factor');
  const ropeScaling = scalingType === 'linear' && typeof factor === 'number' ? { type: 'linear', factor } : null;
  if (scalingType !== undefined && scalingType !== 'none' && ropeScaling === null)
    throw bad(g.path, `rope scaling '${String(scalingType)}' is not supported`);
  return {
    hiddenSize,
    intermediateSize: metaInt(g, 'llama.feed_forward_length'),
    numLayers: metaInt(g, 'llama.block_count'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings: metaInt(g, 'llama.context_length', 2048),
    rmsNormEps: metaFloat(g, 'llama.attention.layer_norm_rms_epsilon', 1e-5),
    ropeTheta: metaFloat(g, 'llama.rope.freq_base', 10000),
    ropeScaling,
    tieWordEmbeddings: tied,
    torchDtype,
    bosTokenId: bos,
    eosTokenIds: eos === null ? [] : [eos],
  };
}

/** Convert a Llama GGUF file into an HF directory at outDir. */
export function convertGguf(file: string, outDir: string): GgufConversion {
  const src = fileSource(file);
  try {
    const g = parseGguf(src, file);
    const arch = g.metadata.get('general.architecture');
    if (arch !== 'llama') throw bad(file, `architecture '${String(arch)}' is not supported (llama only)`);
    const emb = g.tensors.get('token_embd.weight');
    if (emb?.shape.length !== 2) throw bad(file, 'missing 2-D token_embd.weight');
    const vocabSize = emb.shape[0]!;
    const tok = ggufTokenizerFiles(g.metadata, metaInt(g, 'llama.context_length', 2048), file);
    let out = g.tensors.get('output.weight');
    // A classifier stored as an exact copy of the embedding is written as tied (as llama2.c has it).
    const tied = !out || sameBytes(src, out, emb);
    if (tied) out = undefined;
    const dtypes = new Set([...g.tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.typeName));
    const torchDtype = dtypes.has('F32') || dtypes.size === 0 ? 'float32' : dtypes.has('BF16') ? 'bfloat16' : 'float16';
    let spec = llamaSpec(g, vocabSize, tied, torchDtype, tok?.bosTokenId ?? null, tok?.eosTokenId ?? null);
    const ropeFreqs = g.tensors.get('rope_freqs.weight');
    if (ropeFreqs) {
      if (ropeFreqs.typeName !== 'F32' || ropeFreqs.numel !== spec.headDim / 2)
        throw bad(file, 'rope_freqs.weight must be F32 [head_dim/2]');
      const scaling = inferLlama3RopeScaling(readTensor(src, ropeFreqs) as Float32Array, spec.headDim, spec.ropeTheta);
      if (!scaling) throw bad(file, 'rope_freqs.weight does not match llama3 rope scaling (low 1, high 4, original 8192)');
      spec = { ...spec, ropeScaling: scaling };
    }
    const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: Hkv, headDim: Dh } = spec;
    const expected = new Map<string, { hf: string; shape: number[]; permuteHeads: number }>();
    expected.set('token_embd.weight', { hf: 'model.embed_tokens.weight', shape: [vocabSize, D], permuteHeads: 0 });
    expected.set('output_norm.weight', { hf: 'model.norm.weight', shape: [D], permuteHeads: 0 });
    if (out) expected.set('output.weight', { hf: 'lm_head.weight', shape: [vocabSize, D], permuteHeads: 0 });
    const shapes = {
      attnNorm: [D],
      wq: [H * Dh, D],
      wk: [Hkv * Dh, D],
      wv: [Hkv * Dh, D],
      wo: [D, H * Dh],
      ffnNorm: [D],
      w1: [F, D],
      w2: [D, F],
      w3: [F, D],
    };
    for (let l = 0; l < spec.numLayers; l++) {
      for (const [gg, key] of Object.entries(LAYER_TENSORS)) {
        expected.set(`blk.${l}.${gg}.weight`, {
          hf: layerName(l, key),
          shape: shapes[key],
          permuteHeads: key === 'wq' ? H : key === 'wk' ? Hkv : 0,
        });
      }
    }
    for (const name of g.tensors.keys()) {
      if (!expected.has(name) && name !== 'output.weight' && name !== 'rope_freqs.weight')
        throw bad(file, `unexpected tensor '${name}' for a llama model`);
    }
    const tensors: TensorToWrite[] = [];
    for (const [name, e] of expected) {
      const t = g.tensors.get(name);
      if (!t) throw bad(file, `missing tensor '${name}'`);
      const dtype = ST_DTYPE[t.typeName];
      if (!dtype) throw bad(file, `tensor '${name}' has type ${t.typeName}; only F32, F16 and BF16 can be converted (dequantize first)`);
      if (t.shape.join(',') !== e.shape.join(','))
        throw bad(file, `tensor '${name}' has shape [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
      tensors.push({
        name: e.hf,
        dtype,
        shape: e.shape,
        data: () => {
          const w = readTensor(src, t);
          return e.permuteHeads ? permuteRotaryRows(w, e.permuteHeads, Dh, e.shape[1]!) : w;
        },
      });
    }
    if (tok) writeTokenizerFiles(outDir, tok.tokenizerJson, tok.tokenizerConfig);
    writeHfLlamaDir(outDir, spec, tensors, { source: 'gguf' });
    return { spec, numTensors: tensors.length, hasTokenizer: tok !== null };
  } finally {
    src.close();
  }
}
