// The most text one token can stand for, so that a text that cannot fit a context is refused before
// it is tokenized: the HF tokenizer's native memory grows ~250 bytes per token and is only returned
// when V8 happens to collect the Encoding (a 2 MiB prompt is ~400 MB on a small vocabulary).
// A bound is given only where it is a guarantee: a tokenizer that can collapse text (regex Replace,
// StripAccents, whitespace-dropping pre-tokenizers, fused unknowns, WordPiece) gets none.

type Node = Record<string, unknown> | null | undefined;

function parts(node: Node, key: 'normalizers' | 'pretokenizers'): Record<string, unknown>[] {
  if (node === null || node === undefined || typeof node !== 'object') return [];
  if (node.type === 'Sequence' && Array.isArray(node[key])) return (node[key] as Node[]).flatMap((n) => parts(n, key));
  return [node];
}

/** How many times shorter (in UTF-8 bytes) normalization can make a text; null when unbounded. */
function normalizerShrink(normalizer: Node): number | null {
  let factor = 1;
  for (const n of parts(normalizer, 'normalizers')) {
    switch (n.type) {
      case 'Prepend':
      case 'NFD':
      case 'NFKD':
        break;
      // Composition (Hangul jamo, 9 bytes -> 3) and case mapping (the Kelvin sign, 3 bytes -> 1).
      case 'NFC':
      case 'NFKC':
      case 'Lowercase':
        factor *= 3;
        break;
      case 'Replace': {
        const p = n.pattern as { String?: unknown } | undefined;
        if (typeof p?.String !== 'string' || typeof n.content !== 'string' || p.String.length === 0) return null;
        factor *= Math.max(1, Buffer.byteLength(p.String) / Math.max(1, Buffer.byteLength(n.content)));
        break;
      }
      default:
        return null; // StripAccents, Strip, BertNormalizer, Precompiled, ...: may drop text
    }
  }
  return factor;
}

function preTokenizerKeepsText(pre: Node): boolean {
  return parts(pre, 'pretokenizers').every(
    (p) =>
      p.type === 'ByteLevel' ||
      p.type === 'Metaspace' ||
      p.type === 'Digits' ||
      p.type === 'Punctuation' ||
      (p.type === 'Split' && p.behavior !== 'Removed'),
  );
}

function modelKeepsText(model: Node): boolean {
  if (model?.type !== 'BPE') return false;
  // An unknown piece is one unk token per character unless unknowns are fused into one.
  return model.byte_fallback === true || model.unk_token === null || model.unk_token === undefined || model.fuse_unk !== true;
}

/**
 * How many times shorter (in UTF-8 bytes) tokenization can make a text before the model's pieces
 * cover it, for a tokenizer.json; null when it can collapse text without bound. With the longest
 * token at B bytes (as its vocabulary string is spelled, which is at least what it decodes to), a text
 * of L UTF-16 units (each at least one byte) then has at least ceil(L / (B x shrink)) tokens.
 */
export function textShrinkBound(tokenizerJson: Record<string, unknown>): number | null {
  const shrink = normalizerShrink(tokenizerJson.normalizer as Node);
  if (shrink === null || !preTokenizerKeepsText(tokenizerJson.pre_tokenizer as Node) || !modelKeepsText(tokenizerJson.model as Node))
    return null;
  return shrink;
}
