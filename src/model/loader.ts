// loadModel(dir, backend): config.json + generation_config.json + safetensors -> a CausalLM on the
// backend. Validates everything (config, headers, names, shapes, dtypes) before uploading, then
// uploads one tensor at a time in bounded pieces, so peak host memory is the backend copy plus a few MiB.
import { existsSync, statSync } from 'node:fs';
import type { Backend } from '../runtime/backend.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { loadModelConfig } from './config.js';
import { DecoderModel, type DecoderModelOptions } from './decoder-model.js';
import { loadGenerationConfig, type GenerationConfig } from './generation-config.js';
import { quantizeModelWeights, type QuantizeMode } from './quantize.js';
import { openCheckpoint } from './safetensors.js';
import { openGgufModel, resolveGgufPath } from './gguf-model.js';
import { uploadGgufWeights } from './gguf-weights.js';
import type { CausalLM, ModelConfig } from './types.js';
import { checkCheckpoint, uploadWeights, weightTensors, type LoadWeightsOptions } from './weights.js';

export interface LoadModelOptions extends DecoderModelOptions, LoadWeightsOptions {
  /** Cap on each safetensors JSON header (default 100 MiB). */
  readonly maxHeaderBytes?: number;
  /** Weight-only quantization of the linear layers after upload (model/quantize.ts); default none. */
  readonly quantize?: QuantizeMode;
  /** With quantize: lm_head too (default true). */
  readonly quantizeLmHead?: boolean;
}

export interface LoadedModel {
  readonly model: CausalLM;
  /** eosTokenIds merges config.json's with generation_config.json's (config first). */
  readonly config: ModelConfig;
  readonly generationConfig: GenerationConfig;
}

/** Read only the configs of a model directory (no weights): for plan/doctor and tokenizer setup. */
export function loadModelConfigs(dir: string): { config: ModelConfig; generationConfig: GenerationConfig } {
  const gguf = resolveGgufPath(dir);
  if (gguf !== null) {
    const s = openGgufModel(gguf);
    return { config: s.config, generationConfig: s.generationConfig };
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TokenmillError('model_not_found', `model directory ${dir} does not exist`, { details: { dir } });
  }
  const parsed = loadModelConfig(dir);
  const generationConfig = loadGenerationConfig(dir);
  const eos = [...parsed.eosTokenIds];
  for (const id of generationConfig.eosTokenIds) if (!eos.includes(id)) eos.push(id);
  const config: ModelConfig = { ...parsed, eosTokenIds: eos, bosTokenId: parsed.bosTokenId ?? generationConfig.bosTokenId };
  return { config, generationConfig };
}

export async function loadModel(dir: string, backend: Backend, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const gguf = resolveGgufPath(dir);
  if (gguf !== null) return loadGgufModel(gguf, backend, opts);
  const configs = loadModelConfigs(dir);
  const generationConfig = configs.generationConfig;
  let config = configs.config;
  const ckpt = openCheckpoint(dir, { maxHeaderBytes: opts.maxHeaderBytes });
  try {
    if (ckpt.isBaseModelLayout && !config.tieWordEmbeddings && ckpt.info('lm_head.weight') === undefined) {
      // A base-model checkpoint (an embedding model such as Qwen3-Embedding-8B) has no LM head.
      log.warn(
        `${dir}: a base-model checkpoint without lm_head: the embeddings serve as lm_head, so generated text is meaningless ` +
          '(embeddings are unaffected)',
      );
      config = { ...config, tieWordEmbeddings: true };
    }
    checkCheckpoint(ckpt, config);
    let weights = uploadWeights(ckpt, config, backend, opts);
    if (opts.quantize !== undefined)
      weights = await quantizeModelWeights(backend, weights, { mode: opts.quantize, lmHead: opts.quantizeLmHead });
    try {
      return { model: new DecoderModel(config, backend, weights, opts), config, generationConfig };
    } catch (e) {
      for (const t of weightTensors(weights)) backend.free(t);
      throw e;
    }
  } finally {
    ckpt.close();
  }
}

/**
 * A GGUF file run as stored (model/gguf-weights.ts): quantized matrices stay ggml blocks; --quantize
 * int8 then applies to the float matrices only.
 */
async function loadGgufModel(file: string, backend: Backend, opts: LoadModelOptions): Promise<LoadedModel> {
  const s = openGgufModel(file);
  let weights = uploadGgufWeights(s, backend);
  if (opts.quantize !== undefined)
    weights = await quantizeModelWeights(backend, weights, { mode: opts.quantize, lmHead: opts.quantizeLmHead });
  try {
    return { model: new DecoderModel(s.config, backend, weights, opts), config: s.config, generationConfig: s.generationConfig };
  } catch (e) {
    for (const t of weightTensors(weights)) backend.free(t);
    throw e;
  }
}
