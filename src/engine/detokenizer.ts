// Incremental detokenizer: token ids in, newly released text out. Works on raw token bytes, so
// text is released only up to the last complete UTF-8 character (a multi-byte character split over
// SentencePiece <0xNN> or byte-level tokens is never cut). Never calls the tokenizer's decode().
import type { ModelTokenizer } from '../model/tokenizer.js';

/** What the detokenizer needs from a tokenizer (ModelTokenizer implements it). */
export type TokenBytesSource = Pick<ModelTokenizer, 'tokenBytes' | 'isSpecial' | 'stripsLeadingSpace'>;

export interface DetokenizerOptions {
  /** Drop special tokens from the text (OpenAI/vLLM default true). */
  readonly skipSpecialTokens?: boolean;
  /** Special tokens whose text is kept even when skipping (markers an output parser reads). */
  readonly keepSpecialTokenIds?: readonly number[];
  /**
   * Prompt token ids. They produce no output; they only decide leading-space handling: a
   * SentencePiece decoder strips the first space of the whole text, so the first generated token
   * keeps its space when the prompt already produced text (HF: decode(prompt+out) - decode(prompt)).
   */
  readonly promptTokenIds?: readonly number[];
}

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Number of trailing bytes that form an incomplete (but still possibly valid) UTF-8 sequence. */
export function incompleteUtf8Tail(buf: Uint8Array, end = buf.length): number {
  // A UTF-8 sequence is at most 4 bytes: look back over up to 3 trailing bytes for a lead byte.
  for (let back = 1; back <= 3 && back <= end; back++) {
    const b = buf[end - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for its lead
    const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;
    if (need <= back) return 0; // complete (or invalid: TextDecoder replaces it)
    if (back >= 2 && !validSecondByte(b, buf[end - back + 1]!)) return 0;
    return back;
  }
  return 0;
}

function validSecondByte(lead: number, second: number): boolean {
  if (lead === 0xe0) return second >= 0xa0 && second <= 0xbf;
  if (lead === 0xed) return second >= 0x80 && second <= 0x9f;
  if (lead === 0xf0) return second >= 0x90 && second <= 0xbf;
  if (lead === 0xf4) return second >= 0x80 && second <= 0x8f;
  return second >= 0x80 && second <= 0xbf;
}

export class IncrementalDetokenizer {
  private pending = new Uint8Array(64);
  private numPending = 0;
  /** True once any non-skipped token contributed text (prompt included). */
  private producedAny = false;
  private readonly skipSpecial: boolean;
  private readonly keep: ReadonlySet<number>;
  private textSoFar = '';

  constructor(
    private readonly tok: TokenBytesSource,
    opts: DetokenizerOptions = {},
  ) {
    this.skipSpecial = opts.skipSpecialTokens ?? true;
    this.keep = new Set(opts.keepSpecialTokenIds ?? []);
    for (const id of opts.promptTokenIds ?? []) {
      if (this.skipSpecial && tok.isSpecial(id)) continue;
      if (tok.tokenBytes(id).length > 0) {
        this.producedAny = true;
        break;
      }
    }
  }

  /** All text released so far. */
  get text(): string {
    return this.textSoFar;
  }

  /** Feed one token; returns the text it releases (possibly '' while a character is incomplete). */
  push(id: number): string {
    if (this.skipSpecial && this.tok.isSpecial(id) && !this.keep.has(id)) return '';
    let bytes = this.tok.tokenBytes(id);
    if (bytes.length === 0) return '';
    if (!this.producedAny) {
      this.producedAny = true;
      if (this.tok.stripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    }
    this.append(bytes);
    const keep = incompleteUtf8Tail(this.pending, this.numPending);
    return this.release(this.numPending - keep);
  }

  /** Feed several tokens; returns the concatenated released text. */
  pushMany(ids: Iterable<number>): string {
    let s = '';
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** End of stream: release whatever is left (an incomplete character becomes U+FFFD, as HF does). */
  flush(): string {
    return this.release(this.numPending);
  }

  /** Bytes held back waiting for the rest of a character. */
  get numPendingBytes(): number {
    return this.numPending;
  }

  private append(bytes: Uint8Array): void {
    if (this.numPending + bytes.length > this.pending.length) {
      const grown = new Uint8Array(Math.max(this.pending.length * 2, this.numPending + bytes.length));
      grown.set(this.pending.subarray(0, this.numPending));
      this.pending = grown;
    }
    this.pending.set(bytes, this.numPending);
    this.numPending += bytes.length;
  }

  private release(n: number): string {
    if (n <= 0) return '';
    const s = decoder.decode(this.pending.subarray(0, n));
    this.pending.copyWithin(0, n, this.numPending);
    this.numPending -= n;
    this.textSoFar += s;
    return s;
  }
}
