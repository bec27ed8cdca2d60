// Token-string <-> byte helpers shared by the tokenizer, the detokenizer and the converters:
// GPT-2 byte-level alphabet (byte -> printable char), SentencePiece "▁" and <0xNN> byte tokens.
// Pure functions only; never touches files or the tokenizers addon.

/** SentencePiece's visible space (U+2581). */
export const SPM_SPACE = '\u2581';

let byteToCharCache: string[] | null = null;
let charToByteCache: Map<string, number> | null = null;

/** GPT-2's bytes_to_unicode: 256 printable characters, one per byte value. */
export function byteLevelAlphabet(): readonly string[] {
  if (byteToCharCache) return byteToCharCache;
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out = new Array<string>(256);
  const kept = new Set(keep);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = kept.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  byteToCharCache = out;
  return out;
}

function charToByte(): Map<string, number> {
  if (charToByteCache) return charToByteCache;
  const m = new Map<string, number>();
  byteLevelAlphabet().forEach((c, b) => m.set(c, b));
  charToByteCache = m;
  return m;
}

/** Bytes -> byte-level token string (each byte becomes one alphabet char). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  const alpha = byteLevelAlphabet();
  let s = '';
  for (const b of bytes) s += alpha[b]!;
  return s;
}

/** Byte-level token string -> bytes; null when a char is outside the alphabet (e.g. a special token). */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const m = charToByte();
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = m.get(token[i]!);
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

const BYTE_TOKEN_RE = /^<0x([0-9A-Fa-f]{2})>$/;

/** "<0x0A>" -> 10; null for anything else. */
export function parseByteToken(token: string): number | null {
  const m = BYTE_TOKEN_RE.exec(token);
  return m ? parseInt(m[1]!, 16) : null;
}

/** 10 -> "<0x0A>" (upper-case hex, as SentencePiece spells it). */
export function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}
