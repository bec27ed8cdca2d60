// The tokenizer embedded in GGUF metadata (tokenizer.ggml.*) -> tokenizer.json + tokenizer_config.json.
// 'llama' (SentencePiece BPE) goes through spm-tokenizer.ts; 'gpt2' (byte-level BPE) is built here
// with the pre-tokenizer regex named by tokenizer.ggml.pre. Errors are gguf_invalid.
import { TokenmillError } from '../../util/errors.js';
import type { GgufValue } from './gguf-reader.js';
import { buildSpmTokenizerConfig, buildSpmTokenizerJson, type SpmPiece, type SpmPieceType } from './spm-tokenizer.js';
import { byteLevelBpeModel } from './synthetic-tokenizer.js';
import { parseByteToken } from '../tokenizer-bytes.js';

const TOKEN_TYPES: Record<number, SpmPieceType> = { 1: 'normal', 2: 'unknown', 3: 'control', 4: 'user_defined', 5: 'unused', 6: 'byte' };
const NO_ID = 4294967295;

// Split regexes of the byte-level pre-tokenizers llama.cpp names in tokenizer.ggml.pre.
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface TokenizerFilesJson {
  readonly tokenizerJson: object;
  readonly tokenizerConfig: object;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
}

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('gguf_invalid', `${file}: ${why}`, { details: { file } });
}

function stringList(meta: ReadonlyMap<string, GgufValue>, key: string, file: string, required: boolean): string[] | null {
  const v = meta.get(key);
  if (v === undefined) {
    if (required) throw bad(file, `missing ${key}`);
    return null;
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(file, `${key} must be an array of strings`);
  return v as string[];
}

function numberList(meta: ReadonlyMap<string, GgufValue>, key: string, n: number, file: string): number[] | null {
  const v = meta.get(key);
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number'))
    throw bad(file, `${key} must be an array of ${n} numbers`);
  return v as number[];
}

function tokenId(meta: ReadonlyMap<string, GgufValue>, key: string, n: number, file: string): number | null {
  const v = meta.get(key);
  if (v === undefined || v === NO_ID || v === -1) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n)
    throw bad(file, `${key} = ${String(v)} is not a token id below ${n}`);
  return v;
}

function bool(meta: ReadonlyMap<string, GgufValue>, key: string, dflt: boolean): boolean {
  const v = meta.get(key);
  return typeof v === 'boolean' ? v : dflt;
}

/** Build tokenizer files from GGUF metadata; null when the file embeds no tokenizer. */
export function ggufTokenizerFiles(meta: ReadonlyMap<string, GgufValue>, modelMaxLength: number, file: string): TokenizerFilesJson | null {
  const model = meta.get('tokenizer.ggml.model');
  if (model === undefined) return null;
  const tokens = stringList(meta, 'tokenizer.ggml.tokens', file, true)!;
  const n = tokens.length;
  const types = numberList(meta, 'tokenizer.ggml.token_type', n, file);
  const bosId = tokenId(meta, 'tokenizer.ggml.bos_token_id', n, file);
  const eosId = tokenId(meta, 'tokenizer.ggml.eos_token_id', n, file);
  const unkId = tokenId(meta, 'tokenizer.ggml.unknown_token_id', n, file);
  const tpl = meta.get('tokenizer.chat_template');
  const chatTemplate = typeof tpl === 'string' ? tpl : undefined;
  if (model === 'llama') {
    const scores = numberList(meta, 'tokenizer.ggml.scores', n, file);
    const pieces: SpmPiece[] = tokens.map((piece, i) => ({
      piece,
      score: scores ? scores[i]! : -i,
      type: types ? (TOKEN_TYPES[types[i]!] ?? 'normal') : parseByteToken(piece) !== null ? 'byte' : 'normal',
    }));
    if (unkId === null) throw bad(file, 'a llama (SentencePiece) tokenizer needs tokenizer.ggml.unknown_token_id');
    const opts = { unkId, bosId, eosId, addBos: bool(meta, 'tokenizer.ggml.add_bos_token', true) };
    try {
      return {
        tokenizerJson: buildSpmTokenizerJson(pieces, opts),
        tokenizerConfig: buildSpmTokenizerConfig(pieces, { ...opts, modelMaxLength, chatTemplate }),
        bosTokenId: bosId,
        eosTokenId: eosId,
      };
    } catch (e) {
      if (e instanceof TokenmillError) throw bad(file, e.message);
      throw e;
    }
  }
  if (model === 'gpt2') {
    const merges = stringList(meta, 'tokenizer.ggml.merges', file, true)!;
    const pre = meta.get('tokenizer.ggml.pre');
    return buildByteLevel(tokens, types, merges, typeof pre === 'string' ? pre : 'default', {
      bosId,
      eosId,
      addBos: bool(meta, 'tokenizer.ggml.add_bos_token', false),
      modelMaxLength,
      chatTemplate,
      file,
    });
  }
  throw bad(file, `tokenizer.ggml.model '${String(model)}' is not supported (llama or gpt2)`);
}

interface ByteLevelOpts {
  bosId: number | null;
  eosId: number | null;
  addBos: boolean;
  modelMaxLength: number;
  chatTemplate?: string;
  file: string;
}

function buildByteLevel(tokens: string[], types: number[] | null, merges: string[], pre: string, o: ByteLevelOpts): TokenizerFilesJson {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: object[] = [];
  const decoderEntries: Record<string, object> = {};
  tokens.forEach((t, i) => {
    if (vocab[t] === undefined) vocab[t] = i;
    const type = types?.[i];
    if (type === 3 || type === 4) {
      const tok = { content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === 3 };
      added.push({ id: i, ...tok });
      decoderEntries[String(i)] = tok;
    }
  });
  const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: useRegex });
  const split = pre === 'llama-bpe' || pre === 'llama3' ? LLAMA3_SPLIT : pre === 'qwen2' ? QWEN2_SPLIT : null;
  const preTokenizer =
    split === null
      ? byteLevel(true)
      : {
          type: 'Sequence',
          pretokenizers: [{ type: 'Split', pattern: { Regex: split }, behavior: 'Isolated', invert: false }, byteLevel(false)],
        };
  const bos = o.bosId !== null ? tokens[o.bosId]! : null;
  const postProcessor =
    o.addBos && bos !== null && o.bosId !== null
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [o.bosId], tokens: [bos] } },
        }
      : byteLevel(false);
  const pairs = merges.map((m, i) => {
    const k = m.indexOf(' ', 1);
    if (k < 0) throw bad(o.file, `tokenizer.ggml.merges[${i}] is not "left right"`);
    return [m.slice(0, k), m.slice(k + 1)];
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: pre === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder: byteLevel(true),
    model: byteLevelBpeModel(vocab, pairs, split === LLAMA3_SPLIT),
  };
  const name = (id: number | null) => (id === null ? null : tokens[id]!);
  const tokenizerConfig = {
    add_bos_token: o.addBos,
    add_eos_token: false,
    added_tokens_decoder: decoderEntries,
    bos_token: name(o.bosId),
    eos_token: name(o.eosId),
    clean_up_tokenization_spaces: false,
    model_max_length: o.modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...(o.chatTemplate !== undefined ? { chat_template: o.chatTemplate } : {}),
  };
  return { tokenizerJson, tokenizerConfig, bosTokenId: o.bosId, eosTokenId: o.eosId };
}
