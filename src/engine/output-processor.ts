// Per-choice output processing after sampling: incremental detokenization (pluggable), stop checks
// (stop-checker.ts: EOS / stop ids / stop strings / max tokens) and the pending increment (tokens,
// text, logprobs) that becomes the next EngineOutput. Holds no KV and never touches a device.
import type { EngineOutput, TokenLogprob } from './engine-api.js';
import type { Sequence } from './request.js';
import type { SampledToken } from './sampler.js';
import type { FinishReason, SamplingParams } from './sampling-params.js';
import { StopChecker, stopCheckerOptions } from './stop-checker.js';
import { IncrementalDetokenizer, type TokenBytesSource } from './detokenizer.js';

/** An incremental detokenizer for one choice: text released by each new token (valid UTF-8 only). */
export interface IncrementalDecoder {
  push(tokenId: number): string;
  /** Text still held back (an incomplete UTF-8 sequence) once generation ends. */
  flush?(): string;
}

/** Builds a decoder per choice; without one the engine emits token ids only (newText = ''). */
export type DetokenizerFactory = (promptTokenIds: readonly number[], params: SamplingParams) => IncrementalDecoder;

/** The standard factory: detokenizer.ts over a tokenizer (ModelTokenizer), special tokens skipped. */
export function detokenizerFor(tokenizer: TokenBytesSource, opts: { skipSpecialTokens?: boolean } = {}): DetokenizerFactory {
  return (promptTokenIds) => new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: opts.skipSpecialTokens ?? true, promptTokenIds });
}

export class SequenceOutput {
  readonly seq: Sequence;
  private readonly stop: StopChecker;
  private readonly decoder: IncrementalDecoder | null;
  private newTokenIds: number[] = [];
  private newText = '';
  private newLogprobs: TokenLogprob[] | null;
  /** The final output has been taken. */
  done = false;

  constructor(seq: Sequence, eosTokenIds: readonly number[], detokenizer: DetokenizerFactory | null) {
    this.seq = seq;
    const params = seq.request.params;
    this.stop = new StopChecker(stopCheckerOptions(params, eosTokenIds));
    this.decoder = detokenizer === null ? null : detokenizer(seq.request.promptTokenIds, params);
    this.newLogprobs = params.logprobs === null ? null : [];
  }

  /** Feed one sampled token; returns the finish reason when it ends the choice. */
  push(tok: SampledToken): FinishReason | null {
    this.newTokenIds.push(tok.tokenId);
    if (this.newLogprobs !== null && tok.logprob !== undefined) {
      this.newLogprobs.push({ tokenId: tok.tokenId, logprob: tok.logprob, top: tok.top ?? [] });
    }
    const text = this.decoder === null ? '' : this.decoder.push(tok.tokenId);
    const r = this.stop.push(tok.tokenId, text);
    this.newText += r.text;
    if (!r.finished) return null;
    // A stop string discards the rest; otherwise release what the decoder still holds (as generate.ts).
    if (typeof r.stopReason !== 'string') this.newText += this.decoder?.flush?.() ?? '';
    return r.finishReason;
  }

  /** Generation ends without the stop checker deciding (abort, context full, error): release held text. */
  endEarly(): void {
    if (this.stop.finished) return;
    this.newText += this.stop.flush();
    this.newText += this.decoder?.flush?.() ?? '';
  }

  get hasPending(): boolean {
    return this.newTokenIds.length > 0 || this.newText.length > 0;
  }

  /** The increment since the last take(), with the request's totals. */
  take(finished: boolean, finishReason: FinishReason | null): EngineOutput {
    const req = this.seq.request;
    let numGenerated = 0;
    for (const s of req.sequences) numGenerated += s.numOutputTokens;
    const out: EngineOutput = {
      requestId: req.requestId,
      index: this.seq.index,
      newTokenIds: this.newTokenIds,
      newText: this.newText,
      logprobs: this.newLogprobs,
      finished,
      finishReason,
      numPromptTokens: req.promptTokenIds.length,
      numCachedPromptTokens: req.sequences[0]!.numCachedPromptTokens,
      numGeneratedTokens: numGenerated,
      costUsd: req.costUsd,
    };
    this.newTokenIds = [];
    this.newText = '';
    if (this.newLogprobs !== null) this.newLogprobs = [];
    if (finished) this.done = true;
    return out;
  }
}
