// SequenceGrammar: one sequence's grammar state: an xgrammar matcher advanced with every token the
// sequence keeps, and the allowed-token bitmask for its next token. The mask is computed by
// prepareMask() while the forward pass runs (model-runner.ts) and applied by the sampler. The
// matcher always matches the output tokens the sequence holds: prepareMask() first rolls back or
// replays to the sequence's output (preemption keeps tokens today, so this is a check that costs a
// compare; it makes any future discard of tokens safe). The mask is also ANDed with the mask of the
// UTF-8 decoder state over the bytes generated so far (utf8-mask.ts), so the grammar never counts a
// byte run the detokenizer would turn into U+FFFD; a full grammar mask (free text the grammar does
// not constrain) stays full and unapplied. Owns WASM memory: dispose() it.
import { TokenmillError } from '../../util/errors.js';
import { invariant } from '../../util/invariant.js';
import type { CompiledConstraint, GrammarCompilerCache } from './grammar-compiler.js';
import { UTF8_BOUNDARY } from './utf8-mask.js';
import type { XgGrammarMatcher } from './xgrammar-loader.js';

export class SequenceGrammar {
  private matcher: XgGrammarMatcher | null = null;
  /** Tokens the matcher has accepted, in order. */
  private readonly accepted: number[] = [];
  /** utf8States[i]: the UTF-8 decoder state after the first i accepted tokens. */
  private readonly utf8States: number[] = [UTF8_BOUNDARY];
  /** Allowed-token bitmask for the next token (ceil(vocab / 32) words); null until prepared. */
  mask: Int32Array | null = null;
  /** The mask allows every token (free text before a structural tag's trigger): skip applying it. */
  maskIsFull = false;
  private disposed = false;

  constructor(
    readonly cache: GrammarCompilerCache,
    readonly compiled: CompiledConstraint,
    private readonly stopTokenIds: readonly number[],
  ) {}

  get numAccepted(): number {
    return this.accepted.length;
  }

  /** The matcher has accepted a stop token: the output is complete. */
  get isTerminated(): boolean {
    return this.matcher?.isTerminated() ?? false;
  }

  /**
   * Bring the matcher to `output` (the sequence's generated tokens) and compute the mask for the
   * next token. Must run before sample() of this step.
   */
  async prepareMask(output: readonly number[]): Promise<void> {
    invariant(!this.disposed, 'SequenceGrammar used after dispose()');
    this.matcher ??= await this.cache.xg.GrammarMatcher.createGrammarMatcher(this.compiled.compiled, [...this.stopTokenIds], false, -1);
    this.syncTo(output);
    const mask = await this.matcher.getNextTokenBitmask();
    this.mask = mask;
    let full = true;
    for (let i = 0; i < mask.length - 1 && full; i++) if (mask[i] !== -1) full = false;
    this.maskIsFull = full && this.lastWordFull(mask);
    if (!this.maskIsFull) this.cache.utf8.and(mask, this.utf8State);
  }

  /** The UTF-8 decoder state after the accepted tokens (utf8-mask.ts; 0 at a character boundary). */
  get utf8State(): number {
    return this.utf8States[this.utf8States.length - 1]!;
  }

  /** Advance with the sampled token; a token outside the mask is our bug (the sampler masked it). */
  accept(tokenId: number): void {
    invariant(this.matcher !== null, 'SequenceGrammar.accept before prepareMask');
    if (!this.matcher.acceptToken(tokenId)) {
      throw new TokenmillError('internal_error', `grammar: token ${tokenId} was sampled outside the allowed set`);
    }
    this.push(tokenId);
    this.mask = null;
  }

  /** Whether tokenId is allowed by the prepared mask. */
  allows(tokenId: number): boolean {
    const m = this.mask;
    if (m === null) return true;
    const w = m[tokenId >>> 5];
    return w !== undefined && ((w >>> (tokenId & 31)) & 1) === 1;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher?.dispose();
    this.matcher = null;
    this.mask = null;
  }

  private syncTo(output: readonly number[]): void {
    const m = this.matcher!;
    const acc = this.accepted;
    if (acc.length === output.length && (acc.length === 0 || acc[acc.length - 1] === output[output.length - 1])) return;
    let common = 0;
    while (common < acc.length && common < output.length && acc[common] === output[common]) common++;
    if (common < acc.length) {
      m.rollBack(acc.length - common);
      acc.length = common;
      this.utf8States.length = common + 1;
    }
    for (let i = common; i < output.length; i++) {
      if (!m.acceptToken(output[i]!))
        throw new TokenmillError('internal_error', `grammar: replaying token ${output[i]} at output position ${i} failed`);
      this.push(output[i]!);
    }
  }

  private push(tokenId: number): void {
    this.accepted.push(tokenId);
    this.utf8States.push(this.cache.utf8.advance(this.utf8State, tokenId));
  }

  private lastWordFull(mask: Int32Array): boolean {
    const rem = this.cache.vocabSize - (mask.length - 1) * 32; // valid bits in the last word (1..32)
    const w = mask[mask.length - 1]!;
    return rem >= 32 ? w === -1 : (w & ((1 << rem) - 1)) === (1 << rem) - 1;
  }
}
