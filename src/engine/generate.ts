// generate(): one request to completion through the serving Engine (scheduler, KV manager, model
// runner, sampler, output processing) with ENGINE_DEFAULTS, as `serve` runs it. The CLI `generate`,
// the golden tests and the CPU/GPU decode benches use it. The KV pool holds exactly this request;
// max_tokens is clamped to the model's context (the request ends with 'length' when it fills).

import type { CausalLM } from '../model/types.js';
import { TokenmillError } from '../util/errors.js';
import { invariant } from '../util/invariant.js';
import type { TokenBytesSource } from './detokenizer.js';
import type { EngineOutput, TokenLogprob } from './engine-api.js';
import type { EngineOptions, SamplerFactory } from './engine-config.js';
import { ENGINE_DEFAULTS, numBlocksFor } from './engine-defaults.js';
import { Engine } from './engine.js';
import { detokenizerFor } from './output-processor.js';
import type { FinishReason, SamplingParams } from './sampling-params.js';

export interface GenerateOptions {
  readonly params: SamplingParams;
  /** End-of-sequence ids; default model.config.eosTokenIds (config.json + generation_config.json). */
  readonly eosTokenIds?: readonly number[];
  /** Drop special tokens from the text (default true). */
  readonly skipSpecialTokens?: boolean;
  /** Abort: the loop ends after the current step with finishReason 'abort'. */
  readonly signal?: AbortSignal;
  /** Per-choice sampler (EngineOptions.samplerFactory): tests wrap it to see the logits rows. */
  readonly samplerFactory?: SamplerFactory;
  /** Decode-step graphs (EngineOptions.decodeGraphs: true, false or 'auto', the default). */
  readonly decodeGraphs?: boolean | 'auto';
  /** Grammar masks on the device (EngineOptions.deviceGrammarMasks; CUDA only). */
  readonly deviceGrammarMasks?: boolean;
}

export interface GenerateStats {
  readonly numPromptTokens: number;
  readonly numGeneratedTokens: number;
  /** Prompt forward passes plus the first sample (time to first token). */
  readonly prefillMs: number;
  /** Every later step: decode forward + read-back + sampling. */
  readonly decodeMs: number;
  readonly prefillTokPerS: number;
  /** Tokens after the first over decodeMs (0 when only one token was generated). */
  readonly decodeTokPerS: number;
}

export interface GenerateEvent {
  /** Text released by this step (stop strings cut off; may be '' while a character or a possible stop string is pending). */
  readonly text: string;
  /** Tokens produced by this step (the final stop/EOS token included). */
  readonly tokenIds: readonly number[];
  readonly logprobs: readonly TokenLogprob[] | null;
  readonly finishReason: FinishReason | null;
  /** Present on the final event (finishReason !== null). */
  readonly stats?: GenerateStats;
}

/** Longest stretch of steps without giving the event loop a turn. */
const YIELD_EVERY_MS = 20;
const REQUEST_ID = 'generate';

/** Prefill and decode timing: prefill ends when the first token is sampled. */
class GenerateClock {
  private readonly t0 = performance.now();
  private tFirst = 0;
  private numGenerated = 0;

  constructor(private readonly numPromptTokens: number) {}

  tokensGenerated(n: number): void {
    if (n > 0 && this.numGenerated === 0) this.tFirst = performance.now();
    this.numGenerated += n;
  }

  stats(): GenerateStats {
    const now = performance.now();
    const n = this.numGenerated;
    const prefillMs = (n > 0 ? this.tFirst : now) - this.t0;
    const decodeMs = n > 0 ? now - this.tFirst : 0;
    return {
      numPromptTokens: this.numPromptTokens,
      numGeneratedTokens: n,
      prefillMs,
      decodeMs,
      prefillTokPerS: prefillMs > 0 ? (this.numPromptTokens / prefillMs) * 1000 : 0,
      decodeTokPerS: decodeMs > 0 ? ((n - 1) / decodeMs) * 1000 : 0,
    };
  }
}

/**
 * The Engine for one request of promptLen + maxTokens tokens: ENGINE_DEFAULTS throughout, a KV pool
 * that holds exactly that request, and maxModelLen = the model's context.
 */
export function singleRequestEngineOptions(model: CausalLM, numTokens: number): EngineOptions {
  const maxContext = model.config.maxPositionEmbeddings;
  const blockSize = ENGINE_DEFAULTS.blockSize;
  const numBlocks = numBlocksFor(1, Math.max(1, Math.min(numTokens, maxContext + 1)), blockSize);
  return { model, numBlocks, blockSize, maxModelLen: Math.min(maxContext, numBlocks * blockSize) };
}

function eventOf(o: EngineOutput): { text: string; tokenIds: readonly number[]; logprobs: readonly TokenLogprob[] | null } {
  return { text: o.newText, tokenIds: o.newTokenIds, logprobs: o.logprobs };
}

/** Run one request to completion, yielding an event per step that produced a token. */
export async function* generate(
  model: CausalLM,
  tokenizer: TokenBytesSource | null,
  promptTokenIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GenerateEvent, GenerateStats> {
  const { params } = opts;
  if (params.n !== 1)
    throw new TokenmillError('invalid_argument', `generate produces one sequence; n must be 1, got ${params.n}`, { param: 'n' });
  // Room for the prompt and the output within the context; a prompt that fills it is refused by the engine.
  const maxContext = model.config.maxPositionEmbeddings;
  const maxTokens = Math.max(1, Math.min(params.maxTokens, maxContext - promptTokenIds.length));
  const engine = new Engine({
    ...singleRequestEngineOptions(model, promptTokenIds.length + maxTokens),
    eosTokenIds: opts.eosTokenIds ?? model.config.eosTokenIds,
    ...(tokenizer !== null ? { detokenizer: detokenizerFor(tokenizer, { skipSpecialTokens: opts.skipSpecialTokens ?? true }) } : {}),
    ...(opts.samplerFactory !== undefined ? { samplerFactory: opts.samplerFactory } : {}),
    ...(opts.decodeGraphs !== undefined ? { decodeGraphs: opts.decodeGraphs } : {}),
    ...(opts.deviceGrammarMasks !== undefined ? { deviceGrammarMasks: opts.deviceGrammarMasks } : {}),
  });
  try {
    engine.addRequest({ requestId: REQUEST_ID, promptTokenIds, params: { ...params, maxTokens } });
    const clock = new GenerateClock(promptTokenIds.length);
    let lastYield = performance.now();
    for (;;) {
      if (opts.signal?.aborted === true) {
        const last = engine.abortRequest(REQUEST_ID, 'abort')[0];
        const s = clock.stats();
        yield { ...(last !== undefined ? eventOf(last) : { text: '', tokenIds: [], logprobs: null }), finishReason: 'abort', stats: s };
        return s;
      }
      const outputs = await engine.step();
      invariant(outputs.length > 0 || engine.hasWork(), 'generate: the engine stopped before the request finished');
      for (const o of outputs) {
        clock.tokensGenerated(o.newTokenIds.length);
        if (o.finished) {
          const s = clock.stats();
          yield { ...eventOf(o), finishReason: o.finishReason ?? 'stop', stats: s };
          return s;
        }
        yield { ...eventOf(o), finishReason: null };
      }
      // A synchronous backend resolves reads as microtasks, which would starve timers and signal
      // handlers (Ctrl-C, aborts): let the event loop turn every YIELD_EVERY_MS.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
  } finally {
    engine.dispose();
  }
}
