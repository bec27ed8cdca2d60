// convertToGguf: an HF Llama directory -> a Llama-architecture GGUF v3 that llama.cpp (node-llama-cpp)
// runs, the inverse of gguf.ts: Q/K rows go back from HF's rotate_half layout to llama.cpp's
// interleaved pairs, llama.* hyperparameters, the tokenizer as tokenizer.ggml.* metadata, and
// Llama 3.1 rope scaling as rope_freqs.weight. One tensor in memory at a time.
import { llama3Scale } from '../rope.js';
import { halfToF32, f32ToHalf } from '../../runtime/dtype.js';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { loadModelConfig } from '../config.js';
import { openCheckpoint, type HostTensor } from '../safetensors.js';
import type { ModelConfig } from '../types.js';
import { expectedWeights } from '../weights.js';
import { exportTokenizer } from './gguf-tokenizer-export.js';
import { writeGguf, type GgufFloatType, type GgufKv, type GgufTensorToWrite, type GgufTensorType } from './gguf-writer.js';
import { QUANT_FILE_TYPE, tensorType, type GgufQuantOption } from './ggml-mixture.js';
import { quantizeMatrix } from './ggml-quantize.js';
import { type HF_LAYER_NAMES, layerName } from './hf-llama-writer.js';

export type ToGgufDType = 'auto' | 'f32' | 'f16' | 'bf16';

export interface ToGgufOptions {
  /** Matrix dtype: 'auto' keeps the stored one (default); norms and rope factors are always F32 (as llama.cpp writes them). */
  readonly dtype?: ToGgufDType;
  /** general.name (default: 'tokenmill-export'). */
  readonly name?: string;
  /** Quantize the matrices as llama.cpp's file type of this name does (ggml-mixture.ts); overrides dtype. */
  readonly type?: GgufQuantOption;
}

export interface ToGgufResult {
  readonly numTensors: number;
  readonly spec: { readonly numLayers: number; readonly hiddenSize: number; readonly vocabSize: number };
  readonly tokenizer: 'llama' | 'gpt2' | null;
  readonly fileType: string;
  /** How many tensors got each type. */
  readonly typeCounts: Readonly<Record<string, number>>;
  readonly warnings: readonly string[];
}

/**
 * GGUF per-layer tensor name for each HF_LAYER_NAMES key, in file order: ffn_gate right before ffn_up
 * (as llama.cpp's converter writes them), so a loader that maps the file can use the pair as one fused
 * [2I, D] matrix in place (model/gguf-weights.ts).
 */
const GGUF_LAYER: Record<keyof typeof HF_LAYER_NAMES, string> = {
  attnNorm: 'attn_norm',
  wq: 'attn_q',
  wk: 'attn_k',
  wv: 'attn_v',
  wo: 'attn_output',
  ffnNorm: 'ffn_norm',
  w1: 'ffn_gate',
  w3: 'ffn_up',
  w2: 'ffn_down',
};
const FILE_TYPE: Record<GgufFloatType, number> = { F32: 0, F16: 1, BF16: 32 }; // llama_ftype ALL_F32, MOSTLY_F16, MOSTLY_BF16

/**
 * Inverse of permuteRotaryRows: rows of each head go from halves (x0, x2, ...; x1, x3, ...) back to
 * interleaved pairs: out[h*Dh + 2i + j] = in[h*Dh + j*Dh/2 + i]. w is [nHeads*Dh, rowLen] row-major.
 */
export function unpermuteRotaryRows<T extends Float32Array | Uint16Array>(w: T, nHeads: number, headDim: number, rowLen: number): T {
  invariant(headDim % 2 === 0 && w.length === nHeads * headDim * rowLen, 'unpermuteRotaryRows: bad shape');
  const out = new (w.constructor as { new (n: number): T })(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + j * half + i) * rowLen;
        out.set(w.subarray(src, src + rowLen), (h * headDim + 2 * i + j) * rowLen);
      }
    }
  }
  return out;
}

/** The stored tensor in the requested GGUF type (a copy: the checkpoint reuses its read buffer). */
function convertData(t: HostTensor, to: GgufFloatType): Float32Array | Uint16Array {
  const from = t.dtype;
  if (from !== 'F32' && from !== 'F16' && from !== 'BF16')
    throw new TokenmillError('invalid_argument', `tensor '${t.name}' has dtype ${from}; only F32, F16 and BF16 can be written to GGUF`);
  if (from === to) return t.data.slice() as Float32Array | Uint16Array;
  const f32 = from === 'F32' ? (t.data as Float32Array) : halfToF32(t.data as Uint16Array, from === 'F16' ? 'f16' : 'bf16');
  return to === 'F32' ? f32.slice() : f32ToHalf(f32, to === 'F16' ? 'f16' : 'bf16');
}

/** Llama 3.1 scaling as llama.cpp stores it: per-frequency divisors, f32 [headDim/2]. */
export function llama3RopeFactors(c: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const s = c.ropeScaling!;
  return Float32Array.from({ length: c.headDim / 2 }, (_, i) => {
    const freq = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
    return freq / llama3Scale(freq, s.factor, s.lowFreqFactor ?? 1, s.highFreqFactor ?? 4, s.originalMaxPositionEmbeddings ?? 8192);
  });
}

/** The GGUF architecture name: qwen2 / qwen3 keep HF's rotate_half rows (llama.cpp's NEOX rope). */
function ggufArch(c: ModelConfig): 'llama' | 'qwen2' | 'qwen3' {
  return c.architecture === 'Qwen2ForCausalLM' ? 'qwen2' : c.architecture === 'Qwen3ForCausalLM' ? 'qwen3' : 'llama';
}

function checkSupported(c: ModelConfig, dir: string): void {
  const why = c.slidingWindow > 0 ? 'sliding-window attention' : null;
  if (why !== null) {
    throw new TokenmillError(
      'unsupported_architecture',
      `${dir}: ${why} cannot be written as a GGUF file here (llama, qwen2, qwen3 without a sliding window)`,
      { details: { dir } },
    );
  }
}

function hyperparameters(c: ModelConfig, name: string, fileType: number): GgufKv[] {
  const arch = ggufArch(c);
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: 'str', value: arch },
    { key: 'general.name', type: 'str', value: name },
    { key: 'general.file_type', type: 'u32', value: fileType },
    { key: 'general.quantization_version', type: 'u32', value: 2 },
    { key: `${arch}.vocab_size`, type: 'u32', value: c.vocabSize },
    { key: `${arch}.context_length`, type: 'u32', value: c.maxPositionEmbeddings },
    { key: `${arch}.embedding_length`, type: 'u32', value: c.hiddenSize },
    { key: `${arch}.block_count`, type: 'u32', value: c.numLayers },
    { key: `${arch}.feed_forward_length`, type: 'u32', value: c.intermediateSize },
    { key: `${arch}.rope.dimension_count`, type: 'u32', value: c.headDim },
    { key: `${arch}.attention.head_count`, type: 'u32', value: c.numHeads },
    { key: `${arch}.attention.head_count_kv`, type: 'u32', value: c.numKvHeads },
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: 'f32', value: c.rmsNormEps },
    { key: `${arch}.rope.freq_base`, type: 'f32', value: c.ropeTheta },
  ];
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    kvs.push(
      { key: `${arch}.attention.key_length`, type: 'u32', value: c.headDim },
      { key: `${arch}.attention.value_length`, type: 'u32', value: c.headDim },
    );
  }
  if (c.ropeScaling?.type === 'linear') {
    kvs.push(
      { key: `${arch}.rope.scaling.type`, type: 'str', value: 'linear' },
      { key: `${arch}.rope.scaling.factor`, type: 'f32', value: c.ropeScaling.factor },
    );
  }
  return kvs;
}

/** Convert the HF directory hfDir into the GGUF file outFile. */
export function convertToGguf(hfDir: string, outFile: string, opts: ToGgufOptions = {}): ToGgufResult {
  const c = loadModelConfig(hfDir);
  checkSupported(c, hfDir);
  const expected = expectedWeights(c);
  const ckpt = openCheckpoint(hfDir);
  try {
    for (const name of ckpt.tensorNames()) {
      if (!expected.has(name) && !name.endsWith('rotary_emb.inv_freq'))
        throw new TokenmillError('invalid_argument', `${hfDir}: unexpected tensor '${name}' for a Llama model`);
    }
    for (const [name, shape] of expected) {
      const info = ckpt.info(name);
      if (info === undefined)
        throw new TokenmillError('tensor_missing', `${hfDir}: checkpoint has no tensor '${name}'`, { details: { tensor: name } });
      if (info.shape.join(',') !== shape.join(',')) {
        throw new TokenmillError(
          'tensor_shape_mismatch',
          `${hfDir}: '${name}' has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
          { details: { tensor: name } },
        );
      }
    }
    const stored = ckpt.info('model.embed_tokens.weight')!.dtype;
    const dtype = opts.dtype ?? 'auto';
    const matrixType: GgufFloatType =
      dtype === 'auto' ? (stored === 'F16' ? 'F16' : stored === 'BF16' ? 'BF16' : 'F32') : (dtype.toUpperCase() as GgufFloatType);
    const tensors: GgufTensorToWrite[] = [];
    const typeCounts: Record<string, number> = {};
    const q = opts.type;
    const add = (gguf: string, hf: string, permuteHeads = 0): void => {
      const shape = expected.get(hf)!;
      const type: GgufTensorType =
        shape.length === 1
          ? 'F32'
          : q === undefined
            ? matrixType
            : tensorType(q, { name: gguf, shape, numLayers: c.numLayers, tied: c.tieWordEmbeddings });
      typeCounts[type] = (typeCounts[type] ?? 0) + 1;
      tensors.push({
        name: gguf,
        shape,
        type,
        data: () => {
          const floatType = type === 'F32' || type === 'F16' || type === 'BF16' ? type : 'F32';
          let w = convertData(ckpt.read(hf), floatType);
          if (permuteHeads > 0) w = unpermuteRotaryRows(w, permuteHeads, c.headDim, shape[1]!);
          return floatType === type
            ? w
            : quantizeMatrix(type as Exclude<GgufTensorType, GgufFloatType>, w as Float32Array, shape[0]!, shape[1]!);
        },
      });
    };
    add('token_embd.weight', 'model.embed_tokens.weight');
    add('output_norm.weight', 'model.norm.weight');
    if (!c.tieWordEmbeddings) add('output.weight', 'lm_head.weight'); // tied: llama.cpp reuses token_embd
    if (c.ropeScaling?.type === 'llama3') {
      const factors = llama3RopeFactors(c);
      tensors.push({ name: 'rope_freqs.weight', shape: [factors.length], type: 'F32', data: () => factors });
    }
    for (let l = 0; l < c.numLayers; l++) {
      for (const key of Object.keys(GGUF_LAYER) as (keyof typeof GGUF_LAYER)[]) {
        const permute = ggufArch(c) === 'llama';
        add(
          `blk.${l}.${GGUF_LAYER[key]}.weight`,
          layerName(l, key),
          !permute ? 0 : key === 'wq' ? c.numHeads : key === 'wk' ? c.numKvHeads : 0,
        );
      }
      const p = `model.layers.${l}.self_attn.`;
      if (c.attentionBias) for (const x of ['q', 'k', 'v']) add(`blk.${l}.attn_${x}.bias`, `${p}${x}_proj.bias`);
      if (c.qkNorm) for (const x of ['q', 'k']) add(`blk.${l}.attn_${x}_norm.weight`, `${p}${x}_norm.weight`);
    }
    const tok = exportTokenizer(hfDir, { vocabSize: c.vocabSize, bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenIds });
    const warnings = [...(tok?.warnings ?? [])];
    if (tok === null) warnings.push('no tokenizer.json: the GGUF carries no tokenizer (llama.cpp cannot run it without one)');
    const fileType = q === undefined ? FILE_TYPE[matrixType] : QUANT_FILE_TYPE[q];
    writeGguf(outFile, [...hyperparameters(c, opts.name ?? 'tokenmill-export', fileType), ...(tok?.kvs ?? [])], tensors);
    return {
      numTensors: tensors.length,
      spec: { numLayers: c.numLayers, hiddenSize: c.hiddenSize, vocabSize: c.vocabSize },
      tokenizer: tok?.model ?? null,
      fileType: q?.toUpperCase() ?? matrixType,
      typeCounts,
      warnings,
    };
  } finally {
    ckpt.close();
  }
}
