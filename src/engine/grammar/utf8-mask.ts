// Utf8Masks: the tokens that keep a sequence's bytes valid UTF-8. xgrammar accepts byte sequences
// that are not UTF-8 (an encoded surrogate ED A0.., overlong forms, C0/C1/F5-FF, stray continuation
// bytes) and counts such a run as one character, while the detokenizer decodes it to several U+FFFD:
// the text delivered would not be the text the grammar checked (a maxLength string grows, a schema
// breaks). So each constrained sequence keeps a UTF-8 decoder state over its bytes, and its grammar
// mask is ANDed with the state's mask: tokens whose bytes, from that state, never form an invalid
// sequence (a token may end mid-character: that just leaves a state). Tokens without bytes (special
// and control tokens, padded rows) pass in every state: the grammar decides those. Built once per
// vocabulary (~8 x vocab bytes of work); a step costs one AND over ceil(vocab / 32) words. Pure.

/**
 * Decoder states (RFC 3629 table): what the next byte must be.
 * 0: a character boundary; 1: one more in 80-BF; 2: two more, next 80-BF; 3: two more, next A0-BF
 * (after E0: no overlong); 4: two more, next 80-9F (after ED: no surrogate); 5: three more, next
 * 80-BF; 6: three more, next 90-BF (after F0: no overlong); 7: three more, next 80-8F (after F4: <= U+10FFFF).
 */
export const UTF8_STATES = 8;
export const UTF8_BOUNDARY = 0;
/** Not a state: the byte makes the sequence invalid. */
export const UTF8_INVALID = 255;

const LO = [0, 0x80, 0x80, 0xa0, 0x80, 0x80, 0x90, 0x80];
const HI = [0, 0xbf, 0xbf, 0xbf, 0x9f, 0xbf, 0xbf, 0x8f];
/** The state after a valid continuation byte in state s (s >= 1). */
const NEXT = [0, 0, 1, 1, 1, 2, 2, 2];

/** The state after byte b in state s, or UTF8_INVALID. */
export function utf8Step(s: number, b: number): number {
  if (s !== UTF8_BOUNDARY) return b >= LO[s]! && b <= HI[s]! ? NEXT[s]! : UTF8_INVALID;
  if (b < 0x80) return 0;
  if (b < 0xc2) return UTF8_INVALID; // stray continuation, or C0/C1 (overlong 2-byte)
  if (b < 0xe0) return 1;
  if (b === 0xe0) return 3;
  if (b === 0xed) return 4;
  if (b < 0xf0) return 2;
  if (b === 0xf0) return 6;
  if (b < 0xf4) return 5;
  if (b === 0xf4) return 7;
  return UTF8_INVALID; // F5-FF
}

/** The state after bytes from state s, or UTF8_INVALID. */
export function utf8Run(s: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length && s !== UTF8_INVALID; i++) s = utf8Step(s, bytes[i]!);
  return s;
}

/**
 * The state a decoder that replaces errors (TextDecoder, WHATWG) resynchronises to: an invalid byte
 * ends the pending character and is read again from a boundary. Only reached when the tokens did
 * not go through the state masks (free text the grammar does not constrain).
 */
export function utf8Resync(s: number, bytes: Uint8Array): number {
  for (const b of bytes) {
    let t = utf8Step(s, b);
    if (t === UTF8_INVALID && s !== UTF8_BOUNDARY) t = utf8Step(UTF8_BOUNDARY, b);
    s = t === UTF8_INVALID ? UTF8_BOUNDARY : t;
  }
  return s;
}

export class Utf8Masks {
  /** masks[s]: the tokens allowed in state s, packed like xgrammar's bitmask (bit id & 31 of word id >> 5). */
  readonly masks: readonly Int32Array[];
  /** next[s * rowSize + id]: the state after token id from state s (UTF8_INVALID when not allowed). */
  private readonly next: Uint8Array;

  /** tokenBytes[id] for id < rowSize; an empty array for a token without bytes. */
  constructor(
    private readonly tokenBytes: readonly Uint8Array[],
    readonly rowSize: number,
  ) {
    const words = Math.ceil(rowSize / 32);
    const masks = Array.from({ length: UTF8_STATES }, () => new Int32Array(words));
    const next = new Uint8Array(UTF8_STATES * rowSize);
    for (let id = 0; id < rowSize; id++) {
      const bytes = tokenBytes[id];
      for (let s = 0; s < UTF8_STATES; s++) {
        const t = bytes === undefined || bytes.length === 0 ? s : utf8Run(s, bytes);
        next[s * rowSize + id] = t;
        if (t !== UTF8_INVALID) masks[s]![id >>> 5]! |= 1 << (id & 31);
      }
    }
    this.masks = masks;
    this.next = next;
  }

  /** The state after token id from state s, or UTF8_INVALID when the mask of s forbids it. */
  step(s: number, id: number): number {
    return id >= 0 && id < this.rowSize ? this.next[s * this.rowSize + id]! : UTF8_INVALID;
  }

  /** The state after token id, resynchronising where it breaks the sequence (see utf8Resync). */
  advance(s: number, id: number): number {
    const t = this.step(s, id);
    if (t !== UTF8_INVALID) return t;
    const bytes = this.tokenBytes[id];
    return bytes === undefined ? s : utf8Resync(s, bytes);
  }

  /** mask &= the mask of state s (in place). */
  and(mask: Int32Array, s: number): void {
    const m = this.masks[s]!;
    const n = Math.min(mask.length, m.length);
    for (let i = 0; i < n; i++) mask[i]! &= m[i]!;
  }
}
