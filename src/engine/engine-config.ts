// EngineOptions (what the CLI/server pass in) and their resolution against the model: KV pool size
// from a byte budget, maxModelLen clamped to what the pool and the model can hold, step budgets.
// Bad combinations throw TokenmillError('invalid_argument') here, before anything is allocated.
import type { KvEventSink } from './kv/kv-events.js';
import type { CausalLM } from '../model/types.js';
import type { EngineObserver } from '../metrics/engine-observer.js';
import { TokenmillError } from '../util/errors.js';
import { log } from '../util/logger.js';
import { ENGINE_DEFAULTS } from './engine-defaults.js';
import { numBlocksForMemory } from './kv/kv-sizing.js';
import type { DetokenizerFactory } from './output-processor.js';
import type { TokenBytesSource } from './detokenizer.js';
import type { GrammarVocabSource } from './grammar/grammar-vocab.js';
import type { SamplingParams } from './sampling-params.js';
import type { SequenceSampler, SequenceSamplerOptions } from './sampler.js';

/** Builds each choice's sampler; createSequenceSampler unless a caller wraps it (e.g. to see the logits rows). */
export type SamplerFactory = (params: SamplingParams, promptTokenIds: readonly number[], opts: SequenceSamplerOptions) => SequenceSampler;

export interface EngineOptions {
  readonly model: CausalLM;
  /** KV pool: an explicit block count, or a byte budget (numBlocks wins when both are given). */
  readonly numBlocks?: number;
  readonly kvCacheBytes?: number;
  /** Tokens per KV block (default ENGINE_DEFAULTS.blockSize). */
  readonly blockSize?: number;
  /** Longest prompt + output (default: the model's maxPositionEmbeddings; clamped to the pool). */
  readonly maxModelLen?: number;
  /** Token budget per step (default min(ENGINE_DEFAULTS.maxNumBatchedTokens, model.maxTokensPerStep)). */
  readonly maxNumBatchedTokens?: number;
  /** Most sequences per step (default min(ENGINE_DEFAULTS.maxNumSeqs, model.maxLogitsPerStep)). */
  readonly maxNumSeqs?: number;
  readonly enableChunkedPrefill?: boolean;
  readonly enablePrefixCaching?: boolean;
  readonly schedulingPolicy?: 'fcfs' | 'priority';
  /** End-of-sequence ids (default model.config.eosTokenIds; e.g. pass generation_config's). */
  readonly eosTokenIds?: readonly number[];
  /** Per-choice incremental detokenizer (e.g. detokenizerFor(tokenizer)); default: from `tokenizer`. */
  readonly detokenizer?: DetokenizerFactory;
  /** Tokenizer for text output (ModelTokenizer); without it and `detokenizer`, outputs carry ids only. */
  readonly tokenizer?: TokenBytesSource;
  /**
   * Vocabulary for constrained decoding (SamplingParams.constraint). Default: `tokenizer` when it is
   * a ModelTokenizer. Without one, constrained requests are refused (unsupported_feature).
   */
  readonly grammarVocab?: GrammarVocabSource;
  /** Sample on the device when the backend offers it (CUDA) and no row needs logprobs/bias. Default true. */
  readonly deviceSampling?: boolean;
  /**
   * Capture pure-decode steps as graphs per batch-size bucket and replay them (backends with
   * `graphs`; ignored elsewhere). Default ENGINE_DEFAULTS.decodeGraphs ('auto': where the backend's
   * graphs have decodeByDefault, i.e. the CPU); the CLI maps TOKENMILL_DECODE_GRAPHS=1 / 0 to true / false.
   */
  readonly decodeGraphs?: boolean | 'auto';
  /**
   * Apply grammar masks on the device so that constrained rows sample there too (backends with
   * sample() and applyTokenBitmask, i.e. CUDA). Default ENGINE_DEFAULTS.deviceGrammarMasks (false:
   * the host sampler masks them until the kernel has run on a GPU); the CLI maps
   * TOKENMILL_DEVICE_GRAMMAR_MASKS=1 to true.
   */
  readonly deviceGrammarMasks?: boolean;
  /** Machine price for cost accounting (default 0). */
  readonly usdPerHour?: number;
  /** Where each step's prefix-cache events go (serve --kv-events-endpoint); absent: none are kept. */
  readonly kvEvents?: KvEventSink;
  readonly observer?: EngineObserver;
  /** Clock in ms (tests inject one). Default performance.now. */
  readonly now?: () => number;
  /** Per-choice sampler (default createSequenceSampler). A sampler that is not argmaxOnly gets the host logits rows. */
  readonly samplerFactory?: SamplerFactory;
}

export interface ResolvedEngineConfig {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly maxModelLen: number;
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
  readonly enableChunkedPrefill: boolean;
  readonly enablePrefixCaching: boolean;
  readonly schedulingPolicy: 'fcfs' | 'priority';
  readonly eosTokenIds: readonly number[];
  readonly usdPerHour: number;
  readonly deviceSampling: boolean;
  readonly decodeGraphs: boolean | 'auto';
  readonly deviceGrammarMasks: boolean;
}

function bad(msg: string, param?: string): never {
  throw new TokenmillError('invalid_argument', msg, param === undefined ? {} : { param });
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) bad(`${name} must be a positive integer, got ${v}`, name);
  return v;
}

export function resolveEngineConfig(o: EngineOptions): ResolvedEngineConfig {
  const model = o.model;
  const blockSize = positiveInt(o.blockSize ?? ENGINE_DEFAULTS.blockSize, 'blockSize');
  let numBlocks: number;
  if (o.numBlocks !== undefined) numBlocks = positiveInt(o.numBlocks, 'numBlocks');
  else if (o.kvCacheBytes !== undefined) numBlocks = numBlocksForMemory(o.kvCacheBytes, model.kvBytesPerToken(), blockSize);
  else bad('the engine needs numBlocks or kvCacheBytes to size the KV cache');
  const modelMax = model.config.maxPositionEmbeddings;
  let maxModelLen = positiveInt(o.maxModelLen ?? modelMax, 'maxModelLen');
  if (maxModelLen > modelMax) bad(`maxModelLen ${maxModelLen} exceeds the model's max_position_embeddings ${modelMax}`, 'maxModelLen');
  const poolTokens = numBlocks * blockSize;
  if (maxModelLen > poolTokens) {
    log.warn(`maxModelLen lowered from ${maxModelLen} to ${poolTokens}: the KV cache holds ${numBlocks} blocks of ${blockSize} tokens`);
    maxModelLen = poolTokens;
  }
  const maxNumBatchedTokens = positiveInt(
    o.maxNumBatchedTokens ?? Math.min(ENGINE_DEFAULTS.maxNumBatchedTokens, model.maxTokensPerStep),
    'maxNumBatchedTokens',
  );
  if (maxNumBatchedTokens > model.maxTokensPerStep) {
    bad(
      `maxNumBatchedTokens ${maxNumBatchedTokens} exceeds the model workspace (${model.maxTokensPerStep} tokens per step)`,
      'maxNumBatchedTokens',
    );
  }
  const maxLogits = model.maxLogitsPerStep ?? model.maxTokensPerStep;
  const maxNumSeqs = positiveInt(o.maxNumSeqs ?? Math.min(ENGINE_DEFAULTS.maxNumSeqs, maxLogits, maxNumBatchedTokens), 'maxNumSeqs');
  if (maxNumSeqs > maxLogits) bad(`maxNumSeqs ${maxNumSeqs} exceeds the model's logits rows per step (${maxLogits})`, 'maxNumSeqs');
  // Every running sequence must be able to decode each step, or the tail of the running queue starves.
  if (maxNumBatchedTokens < maxNumSeqs)
    bad(`maxNumBatchedTokens (${maxNumBatchedTokens}) must be >= maxNumSeqs (${maxNumSeqs})`, 'maxNumBatchedTokens');
  const enableChunkedPrefill = o.enableChunkedPrefill ?? ENGINE_DEFAULTS.enableChunkedPrefill;
  if (!enableChunkedPrefill && maxNumBatchedTokens < maxModelLen) {
    bad(
      `without chunked prefill maxNumBatchedTokens (${maxNumBatchedTokens}) must be >= maxModelLen (${maxModelLen})`,
      'maxNumBatchedTokens',
    );
  }
  const usdPerHour = o.usdPerHour ?? 0;
  if (!(usdPerHour >= 0) || !Number.isFinite(usdPerHour)) bad(`usdPerHour must be >= 0, got ${usdPerHour}`, 'usdPerHour');
  return {
    numBlocks,
    blockSize,
    maxModelLen,
    maxNumBatchedTokens,
    maxNumSeqs,
    enableChunkedPrefill,
    enablePrefixCaching: o.enablePrefixCaching ?? ENGINE_DEFAULTS.enablePrefixCaching,
    schedulingPolicy: o.schedulingPolicy ?? ENGINE_DEFAULTS.schedulingPolicy,
    eosTokenIds: o.eosTokenIds ?? model.config.eosTokenIds,
    usdPerHour,
    deviceSampling: o.deviceSampling ?? ENGINE_DEFAULTS.deviceSampling,
    decodeGraphs: o.decodeGraphs ?? ENGINE_DEFAULTS.decodeGraphs,
    deviceGrammarMasks: o.deviceGrammarMasks ?? ENGINE_DEFAULTS.deviceGrammarMasks,
  };
}
