// generate(): the single-request loop over a CausalLM (CLI `generate`, golden tests, debugging).
// Contiguous paged KV (block table 0..n-1) through model/sequence-driver, prefill chunked by
// maxTokensPerStep, then one decode step per token; text leaves through the incremental detokenizer
// and the stop checker. Not the serving path: continuous batching lives in engine.ts/model-runner.ts.

import type { CausalLM } from '../model/types.js';
import { SequenceDriver } from '../model/sequence-driver.js';
import { TokenmillError } from '../util/errors.js';
import { IncrementalDetokenizer, type TokenBytesSource } from './detokenizer.js';
import type { TokenLogprob } from './engine-api.js';
import { createSequenceSampler } from './sampler.js';
import type { FinishReason, SamplingParams } from './sampling-params.js';
import { StopChecker, stopCheckerOptions } from './stop-checker.js';

export interface GenerateOptions {
  readonly params: SamplingParams;
  /** End-of-sequence ids; default model.config.eosTokenIds (config.json + generation_config.json). */
  readonly eosTokenIds?: readonly number[];
  /** KV block size in tokens (default 16). */
  readonly blockSize?: number;
  /** Drop special tokens from the text (default true). */
  readonly skipSpecialTokens?: boolean;
  /** Abort: the loop ends after the current step with finishReason 'abort'. */
  readonly signal?: AbortSignal;
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

function checkPrompt(promptTokenIds: readonly number[], vocabSize: number): void {
  if (promptTokenIds.length === 0) throw new TokenmillError('invalid_argument', 'the prompt has no tokens', { param: 'prompt' });
  for (const id of promptTokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new TokenmillError('invalid_argument', `prompt token id ${id} is outside the vocabulary (size ${vocabSize})`, { param: 'prompt' });
    }
  }
}

/** Prefill and decode timing: prefill ends when the first token is sampled. */
class GenerateClock {
  private readonly t0 = performance.now();
  private tFirst = 0;
  private numGenerated = 0;

  constructor(private readonly numPromptTokens: number) {}

  tokenGenerated(): void {
    if (++this.numGenerated === 1) this.tFirst = performance.now();
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

/** Run one request to completion, yielding an event per generated token. */
export async function* generate(
  model: CausalLM,
  tokenizer: TokenBytesSource,
  promptTokenIds: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GenerateEvent, GenerateStats> {
  const { params } = opts;
  const vocab = model.config.vocabSize;
  if (params.n !== 1) throw new TokenmillError('invalid_argument', `generate produces one sequence; n must be 1, got ${params.n}`, { param: 'n' });
  const sampler = createSequenceSampler(params, promptTokenIds, { vocabSize: vocab });
  checkPrompt(promptTokenIds, vocab);
  const maxContext = model.config.maxPositionEmbeddings;
  if (promptTokenIds.length >= maxContext) {
    throw new TokenmillError('context_length_exceeded', `the prompt has ${promptTokenIds.length} tokens; the model's context is ${maxContext}`, {
      param: 'prompt',
      details: { numPromptTokens: promptTokenIds.length, maxContext },
    });
  }
  // Room for the prompt and every token but the last (which is sampled, never fed back).
  const maxSeqLen = Math.min(maxContext, promptTokenIds.length + params.maxTokens);
  const driver = new SequenceDriver(model, { blockSize: opts.blockSize, maxSeqLen });
  const detok = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: opts.skipSpecialTokens ?? true, promptTokenIds });
  const stopper = new StopChecker(stopCheckerOptions(params, opts.eosTokenIds ?? model.config.eosTokenIds));
  const clock = new GenerateClock(promptTokenIds.length);
  let lastYield = performance.now();
  try {
    let logits = await driver.prefill(promptTokenIds);
    for (;;) {
      const picked = sampler.sample(logits);
      clock.tokenGenerated();
      const logprobs: TokenLogprob[] | null =
        picked.logprob === undefined ? null : [{ tokenId: picked.tokenId, logprob: picked.logprob, top: picked.top ?? [] }];
      const r = stopper.push(picked.tokenId, detok.push(picked.tokenId));
      let finishReason: FinishReason | null = r.finishReason;
      let text = r.text;
      if (finishReason === null && driver.position >= maxContext) finishReason = 'length'; // context full
      if (finishReason === null && opts.signal?.aborted === true) finishReason = 'abort';
      if (finishReason !== null) {
        // A stop string discards the rest; otherwise release what the detokenizer and checker hold.
        if (!r.finished) text += stopper.flush();
        if (typeof r.stopReason !== 'string') text += detok.flush();
        const s = clock.stats();
        yield { text, tokenIds: [picked.tokenId], logprobs, finishReason, stats: s };
        return s;
      }
      yield { text, tokenIds: [picked.tokenId], logprobs, finishReason: null };
      // A synchronous backend resolves reads as microtasks, which would starve timers and signal
      // handlers (Ctrl-C, aborts): let the event loop turn every YIELD_EVERY_MS.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      logits = await driver.decode(picked.tokenId);
    }
  } finally {
    driver.dispose();
  }
}
