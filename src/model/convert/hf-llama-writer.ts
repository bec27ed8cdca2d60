// Shared tail of the llama2.c and GGUF converters: writes a standard HF Llama directory
// (config.json, generation_config.json, model.safetensors) and owns the rotary row permutation from
// the interleaved-pair layout (llama2.c, GGUF) to HF's rotate_half layout. No format parsing here.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import { writeSafetensors, type TensorToWrite } from '../safetensors.js';
import type { ModelConfig } from '../types.js';

/** The ModelConfig fields a converted Llama carries, with rope scaling and dtype as HF spells them. */
export interface HfLlamaSpec
  extends Pick<
    ModelConfig,
    | 'hiddenSize'
    | 'intermediateSize'
    | 'numLayers'
    | 'numHeads'
    | 'numKvHeads'
    | 'headDim'
    | 'vocabSize'
    | 'maxPositionEmbeddings'
    | 'rmsNormEps'
    | 'ropeTheta'
    | 'tieWordEmbeddings'
    | 'bosTokenId'
  > {
  readonly ropeScaling: Readonly<Record<string, unknown>> | null;
  readonly torchDtype: 'float32' | 'float16' | 'bfloat16';
  /** config.json's eos_token_id (the first) and generation_config.json's list (all). */
  readonly eosTokenIds: readonly number[];
}

/**
 * HF's convert_llama_weights_to_hf permute(w, nHeads): rows of each head go from interleaved pairs
 * (x0, x1), (x2, x3), ... to halves (x0, x2, ...; x1, x3, ...):
 * out[h*Dh + j*Dh/2 + i] = in[h*Dh + 2i + j]. w is [nHeads*Dh, rowLen] row-major.
 */
export function permuteRotaryRows<T extends Float32Array | Uint16Array>(w: T, nHeads: number, headDim: number, rowLen: number): T {
  invariant(headDim % 2 === 0, 'rotary head dim must be even');
  invariant(w.length === nHeads * headDim * rowLen, 'permuteRotaryRows: size mismatch');
  const out = new (w.constructor as { new (n: number): T })(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + 2 * i + j) * rowLen;
        const dst = (h * headDim + j * half + i) * rowLen;
        out.set(w.subarray(src, src + rowLen), dst);
      }
    }
  }
  return out;
}

/** HF tensor name of llama2.c / GGUF per-layer weights. */
export const HF_LAYER_NAMES = {
  attnNorm: 'input_layernorm.weight',
  wq: 'self_attn.q_proj.weight',
  wk: 'self_attn.k_proj.weight',
  wv: 'self_attn.v_proj.weight',
  wo: 'self_attn.o_proj.weight',
  ffnNorm: 'post_attention_layernorm.weight',
  w1: 'mlp.gate_proj.weight',
  w2: 'mlp.down_proj.weight',
  w3: 'mlp.up_proj.weight',
} as const;

export const layerName = (layer: number, key: keyof typeof HF_LAYER_NAMES): string => `model.layers.${layer}.${HF_LAYER_NAMES[key]}`;

export function hfLlamaConfigJson(s: HfLlamaSpec): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocabSize,
    max_position_embeddings: s.maxPositionEmbeddings,
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    rope_scaling: s.ropeScaling,
    tie_word_embeddings: s.tieWordEmbeddings,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: s.torchDtype,
    bos_token_id: s.bosTokenId,
    eos_token_id: s.eosTokenIds[0] ?? null,
  };
}

/** Write config.json, generation_config.json and model.safetensors into outDir. */
export function writeHfLlamaDir(
  outDir: string,
  spec: HfLlamaSpec,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> = {},
): void {
  try {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'config.json'), JSON.stringify(hfLlamaConfigJson(spec), null, 2) + '\n');
    const gen = { bos_token_id: spec.bosTokenId, eos_token_id: spec.eosTokenIds.length === 1 ? spec.eosTokenIds[0] : spec.eosTokenIds };
    writeFileSync(join(outDir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  } catch (e) {
    throw new TokenmillError('io_error', `writing ${outDir}: ${(e as Error).message}`, { cause: e });
  }
  writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt', ...metadata });
}

/** Write tokenizer.json + tokenizer_config.json objects into outDir. */
export function writeTokenizerFiles(outDir: string, tokenizerJson: object, tokenizerConfig: object): void {
  try {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
  } catch (e) {
    throw new TokenmillError('io_error', `writing tokenizer files to ${outDir}: ${(e as Error).message}`, { cause: e });
  }
}
