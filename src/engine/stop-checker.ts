// When a sequence stops, and which text it may release so far. Fed one token and its decoded text
// at a time: stop strings are matched across token boundaries (text that could begin a stop string
// is held back until it cannot), the stop string itself is cut off, stop token ids and EOS ids end
// the sequence ('stop'), max tokens ends it ('length'). Never sees logits or the tokenizer.

import type { SamplingParams } from './sampling-params.js';

export type StopFinishReason = 'stop' | 'length';

export interface StopCheckResult {
  /** Text that is now safe to emit (possibly ''). */
  readonly text: string;
  readonly finished: boolean;
  readonly finishReason: StopFinishReason | null;
  /** What stopped it: the matched stop string or the stop/EOS token id (null for 'length'). */
  readonly stopReason: string | number | null;
}

export interface StopCheckerOptions {
  readonly stop: readonly string[];
  readonly stopTokenIds: readonly number[];
  /** End-of-sequence ids (ModelConfig.eosTokenIds / generation config); ignored with ignoreEos. */
  readonly eosTokenIds: readonly number[];
  readonly ignoreEos: boolean;
  readonly maxTokens: number;
  /** Keep the matched stop string in the released text (default false: it is cut off). */
  readonly includeStopStr?: boolean;
}

export function stopCheckerOptions(params: SamplingParams, eosTokenIds: readonly number[]): StopCheckerOptions {
  return {
    stop: params.stop,
    stopTokenIds: params.stopTokenIds,
    eosTokenIds,
    ignoreEos: params.ignoreEos,
    maxTokens: params.maxTokens,
    includeStopStr: params.includeStopStrInOutput,
  };
}

export class StopChecker {
  private readonly stopStrings: readonly string[];
  private readonly stopIds: ReadonlySet<number>;
  private readonly eosIds: ReadonlySet<number>;
  private readonly maxTokens: number;
  private readonly includeStopStr: boolean;
  /** Decoded text not yet released: always a (possibly empty) prefix of some stop string. */
  private held = '';
  private numTokens = 0;
  private done: StopCheckResult | null = null;

  constructor(opts: StopCheckerOptions) {
    this.stopStrings = opts.stop.filter((s) => s.length > 0);
    this.stopIds = new Set(opts.stopTokenIds);
    this.eosIds = new Set(opts.ignoreEos ? [] : opts.eosTokenIds);
    this.maxTokens = opts.maxTokens;
    this.includeStopStr = opts.includeStopStr ?? false;
  }

  get finished(): boolean {
    return this.done !== null;
  }

  /** Tokens seen so far (including a final stop/EOS token). */
  get numGeneratedTokens(): number {
    return this.numTokens;
  }

  /** Text held back because it might begin a stop string. */
  get pendingText(): string {
    return this.held;
  }

  /**
   * Feed the next generated token and the text the detokenizer released for it. A stop or EOS
   * token contributes no text; whatever was held back is released, since no stop string matched.
   */
  push(tokenId: number, newText: string): StopCheckResult {
    if (this.done) return { ...this.done, text: '' };
    this.numTokens++;
    if (this.stopIds.has(tokenId) || this.eosIds.has(tokenId)) {
      return this.finish(this.takeHeld(), 'stop', tokenId);
    }
    const pending = this.held + newText;
    const match = this.findStop(pending);
    if (match) {
      this.held = '';
      return this.finish(pending.slice(0, match.index + (this.includeStopStr ? match.stop.length : 0)), 'stop', match.stop);
    }
    const keep = this.heldSuffixLength(pending);
    this.held = pending.slice(pending.length - keep);
    const text = pending.slice(0, pending.length - keep);
    if (this.numTokens >= this.maxTokens) return this.finish(text + this.takeHeld(), 'length', null);
    return { text, finished: false, finishReason: null, stopReason: null };
  }

  /** Release held-back text when generation ends early (abort, context full). */
  flush(): string {
    return this.takeHeld();
  }

  private finish(text: string, reason: StopFinishReason, stopReason: string | number | null): StopCheckResult {
    this.done = { text, finished: true, finishReason: reason, stopReason };
    return this.done;
  }

  private takeHeld(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** The earliest occurrence of any stop string in text. */
  private findStop(text: string): { index: number; stop: string } | null {
    let best: { index: number; stop: string } | null = null;
    for (const stop of this.stopStrings) {
      const i = text.indexOf(stop);
      if (i >= 0 && (best === null || i < best.index)) best = { index: i, stop };
    }
    return best;
  }

  /** Length of the longest suffix of text that is a proper prefix of some stop string. */
  private heldSuffixLength(text: string): number {
    let best = 0;
    for (const stop of this.stopStrings) {
      const maxLen = Math.min(stop.length - 1, text.length);
      for (let len = maxLen; len > best; len--) {
        if (text.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
