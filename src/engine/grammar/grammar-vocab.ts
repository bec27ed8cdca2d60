// The vocabulary as xgrammar needs it: one encoded string per token id of the model's logits row,
// in the tokenizer's own spelling (GPT-2 byte-level, SentencePiece with <0xNN> byte fallback, or
// plain), so xgrammar can recover each token's exact bytes. Special tokens and padded rows become
// "" (xgrammar never allows those, except the stop tokens at the end), but for the tool-call and
// reasoning markers some tokenizers mark special (GRAMMAR_VISIBLE_SPECIALS): a structural tag can
// then begin with Llama 3.1's <|python_tag|> or Mistral's [TOOL_CALLS]. Pure.
import type { ModelTokenizer } from '../../model/tokenizer.js';
import { bytesToByteLevel, SPM_SPACE } from '../../model/tokenizer-bytes.js';

/** What the grammar engine needs from a tokenizer (ModelTokenizer implements it). */
export type GrammarVocabSource = Pick<
  ModelTokenizer,
  'vocabSize' | 'spelling' | 'stripsLeadingSpace' | 'tokenString' | 'tokenBytes' | 'isSpecial'
>;

export function isGrammarVocabSource(t: unknown): t is GrammarVocabSource {
  const o = t as Partial<GrammarVocabSource> | null;
  return (
    o !== null &&
    typeof o === 'object' &&
    typeof o.vocabSize === 'number' &&
    typeof o.spelling === 'string' &&
    typeof o.tokenString === 'function' &&
    typeof o.tokenBytes === 'function' &&
    typeof o.isSpecial === 'function'
  );
}

/** Special tokens a grammar may emit, spelled as their text (markers, never chat-control tokens). */
export const GRAMMAR_VISIBLE_SPECIALS: ReadonlySet<string> = new Set([
  '<|python_tag|>',
  '[TOOL_CALLS]',
  '[ARGS]',
  '[CALL_ID]',
  '<tool_call>',
  '</tool_call>',
  '<think>',
  '</think>',
  '[THINK]',
  '[/THINK]',
]);

export interface EncodedVocab {
  /** encoded[id] for id < logits row length. */
  readonly encoded: string[];
  /** xgrammar's vocab_type. */
  readonly vocabType: 'byte_level' | 'byte_fallback' | 'raw';
  readonly prependSpace: boolean;
  /** The bytes each encoded token stands for (empty where encoded is ""): utf8-mask.ts runs them. */
  readonly bytes: Uint8Array[];
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const NO_BYTES = new Uint8Array(0);

/** Encode the vocabulary for a logits row of rowSize entries (>= tokenizer vocab when padded). */
export function encodeVocab(tok: GrammarVocabSource, rowSize: number): EncodedVocab {
  const encoded = new Array<string>(rowSize).fill('');
  const bytesOf = new Array<Uint8Array>(rowSize).fill(NO_BYTES);
  const n = Math.min(rowSize, tok.vocabSize);
  for (let id = 0; id < n; id++) {
    if (tok.isSpecial(id) && !GRAMMAR_VISIBLE_SPECIALS.has(tok.tokenString(id) ?? '')) continue;
    bytesOf[id] = tok.tokenBytes(id);
    if (tok.spelling === 'byte_level') {
      // Bytes, not the vocab string: added tokens ("<tool_call>") are stored as plain text in
      // tokenizer.json, so re-spell everything in the byte-level alphabet.
      const bytes = tok.tokenBytes(id);
      encoded[id] = bytes.length === 0 ? '' : bytesToByteLevel(bytes);
    } else if (tok.spelling === 'sentencepiece') {
      const s = tok.tokenString(id) ?? '';
      // Added tokens are plain text: their spaces must read as SentencePiece spaces.
      encoded[id] = s.includes(' ') ? s.replaceAll(' ', SPM_SPACE) : s;
    } else {
      encoded[id] = utf8.decode(tok.tokenBytes(id));
    }
  }
  const vocabType = tok.spelling === 'byte_level' ? 'byte_level' : tok.spelling === 'sentencepiece' ? 'byte_fallback' : 'raw';
  return { encoded, vocabType, prependSpace: tok.spelling === 'sentencepiece' && tok.stripsLeadingSpace, bytes: bytesOf };
}
