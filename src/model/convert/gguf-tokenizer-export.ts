// HF tokenizer.json (+ tokenizer_config.json) -> GGUF tokenizer.ggml.* metadata, the inverse of
// gguf-tokenizer.ts. SentencePiece-style BPE (byte_fallback, as our llama2.c / GGUF conversions
// write) becomes 'llama' with tokens/scores/token_type; byte-level BPE becomes 'gpt2' with
// tokens/merges and the pre-tokenizer name llama.cpp knows. Errors are tokenizer_invalid.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../../util/errors.js';
import { parseByteToken } from '../tokenizer-bytes.js';
import { loadTokenizerConfig } from '../tokenizer-config.js';
import type { GgufValue } from './gguf-reader.js';
import type { GgufKv } from './gguf-writer.js';
import { ggufTokenizerFiles } from './gguf-tokenizer.js';

// llama.cpp token types.
const NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6;

export interface TokenizerExport {
  readonly model: 'llama' | 'gpt2';
  readonly kvs: GgufKv[];
  readonly warnings: string[];
}

interface TokJson {
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: (string | [string, string])[];
    byte_fallback?: boolean;
    unk_token?: string | null;
  };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: unknown;
  post_processor?: unknown;
}

function bad(file: string, why: string): TokenmillError {
  return new TokenmillError('tokenizer_invalid', `${file}: ${why}`, { details: { file } });
}

function mergePair(m: string | [string, string], i: number, file: string): [string, string] {
  if (Array.isArray(m)) return m;
  const k = m.indexOf(' ', 1);
  if (k < 0) throw bad(file, `merges[${i}] is not "left right"`);
  return [m.slice(0, k), m.slice(k + 1)];
}

/** Split regex of a byte-level pre-tokenizer ('<bytelevel>' for ByteLevel's own regex), or null. */
function splitRegex(pre: unknown): string | null {
  if (pre === null || typeof pre !== 'object') return null;
  const p = pre as { type?: string; pretokenizers?: unknown[]; pattern?: { Regex?: string }; use_regex?: boolean };
  if (p.type === 'Split' && typeof p.pattern?.Regex === 'string') return p.pattern.Regex;
  if (p.type === 'ByteLevel') return p.use_regex === false ? null : '<bytelevel>';
  if (p.type === 'Sequence')
    for (const x of p.pretokenizers ?? []) {
      const r = splitRegex(x);
      if (r !== null) return r;
    }
  return null;
}

function hasByteLevel(v: unknown): boolean {
  return JSON.stringify(v ?? null).includes('"ByteLevel"');
}

/** tokenizer.ggml.pre for a byte-level tokenizer: the name whose rebuilt pre-tokenizer splits alike. */
function byteLevelPreName(tok: TokJson, file: string): string | null {
  const want = splitRegex(tok.pre_tokenizer);
  for (const name of ['llama-bpe', 'qwen2', 'default']) {
    const meta = new Map<string, GgufValue>([
      ['tokenizer.ggml.model', 'gpt2'],
      ['tokenizer.ggml.tokens', ['a']],
      ['tokenizer.ggml.merges', []],
      ['tokenizer.ggml.pre', name],
    ]);
    const built = ggufTokenizerFiles(meta, 16, file)!.tokenizerJson as { pre_tokenizer: unknown };
    if (splitRegex(built.pre_tokenizer) === want) return name;
  }
  return null;
}

function tokenId(vocab: Map<string, number>, name: string | null, fallback: number | null): number | null {
  if (name !== null && vocab.has(name)) return vocab.get(name)!;
  return fallback;
}

/**
 * Scores that make SentencePiece's "merge the highest-scoring pair" pick the same merges, in the
 * same order, as HF BPE's merge ranks: a piece made by the merge of rank r scores -r (its first
 * such merge); pieces no merge makes score below every merge. Rebuilding merges from these scores
 * (spm-tokenizer.ts) gives the original merge list back.
 */
function scoresFromMerges(tokens: readonly string[], merges: readonly [string, string][]): Float32Array {
  const firstRank = new Map<string, number>();
  merges.forEach(([l, r], i) => {
    if (!firstRank.has(l + r)) firstRank.set(l + r, i);
  });
  return Float32Array.from(tokens, (t, id) => -(firstRank.get(t) ?? merges.length + id));
}

export interface TokenizerExportOptions {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

/** GGUF tokenizer metadata for the HF tokenizer in dir; null when dir has no tokenizer.json. */
export function exportTokenizer(dir: string, o: TokenizerExportOptions): TokenizerExport | null {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) return null;
  let tok: TokJson;
  try {
    tok = JSON.parse(readFileSync(file, 'utf8')) as TokJson;
  } catch (e) {
    throw bad(file, `not valid JSON: ${(e as Error).message}`);
  }
  const m = tok.model;
  if (m?.type !== 'BPE' || m.vocab === undefined || m.vocab === null)
    throw bad(file, `only BPE tokenizers can be written to GGUF (model.type is ${String(m?.type)})`);
  const cfg = loadTokenizerConfig(dir);
  const warnings: string[] = [];
  // Tokens by id: the vocab, then added tokens; holes (and rows up to vocab_size) are padding.
  const vocab = new Map<string, number>(Object.entries(m.vocab));
  for (const a of tok.added_tokens ?? []) if (!vocab.has(a.content)) vocab.set(a.content, a.id);
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  if (maxId >= o.vocabSize) throw bad(file, `token id ${maxId} does not fit the model's vocab_size ${o.vocabSize}`);
  const tokens: string[] = new Array<string>(o.vocabSize).fill('');
  const types = new Int32Array(o.vocabSize).fill(NORMAL);
  const filled = new Uint8Array(o.vocabSize);
  for (const [t, id] of vocab) {
    tokens[id] = t;
    filled[id] = 1;
  }
  for (let id = 0; id < o.vocabSize; id++)
    if (!filled[id]) {
      tokens[id] = `[PAD${id}]`;
      types[id] = UNUSED;
    }
  if (filled.some((f) => f === 0)) warnings.push(`vocabulary padded to vocab_size ${o.vocabSize} with [PAD<id>] tokens`);
  for (const a of tok.added_tokens ?? []) types[a.id] = a.special === true ? CONTROL : USER_DEFINED;
  const merges = (m.merges ?? []).map((x, i) => mergePair(x, i, file));
  const bos = tokenId(vocab, cfg.bosToken, o.bosTokenId);
  const eos = tokenId(vocab, cfg.eosToken, o.eosTokenIds[0] ?? null);
  const kvs: GgufKv[] = [];
  let model: 'llama' | 'gpt2';
  if (m.byte_fallback === true) {
    model = 'llama';
    const unk = m.unk_token != null && vocab.has(m.unk_token) ? vocab.get(m.unk_token)! : null;
    if (unk === null) throw bad(file, 'a SentencePiece-style (byte_fallback) tokenizer needs model.unk_token in the vocabulary');
    types[unk] = UNKNOWN;
    tokens.forEach((t, id) => {
      if (types[id] === NORMAL && parseByteToken(t) !== null) types[id] = BYTE;
    });
    kvs.push(
      { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
      { key: 'tokenizer.ggml.tokens', type: 'arr_str', value: tokens },
      { key: 'tokenizer.ggml.scores', type: 'arr_f32', value: scoresFromMerges(tokens, merges) },
      { key: 'tokenizer.ggml.token_type', type: 'arr_i32', value: types },
      { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: unk },
    );
  } else if (hasByteLevel(tok.pre_tokenizer)) {
    model = 'gpt2';
    let pre = byteLevelPreName(tok, file);
    if (pre === null) {
      warnings.push(
        "the pre-tokenizer matches none llama.cpp's 'llama-bpe', 'qwen2' or 'default' rebuild; wrote 'default' (llama.cpp may " +
          'split text differently)',
      );
      pre = 'default';
    }
    kvs.push(
      { key: 'tokenizer.ggml.model', type: 'str', value: 'gpt2' },
      { key: 'tokenizer.ggml.pre', type: 'str', value: pre },
      { key: 'tokenizer.ggml.tokens', type: 'arr_str', value: tokens },
      { key: 'tokenizer.ggml.token_type', type: 'arr_i32', value: types },
      { key: 'tokenizer.ggml.merges', type: 'arr_str', value: merges.map(([l, r]) => `${l} ${r}`) },
    );
  } else {
    throw bad(file, 'neither a SentencePiece-style (byte_fallback) nor a byte-level BPE tokenizer');
  }
  if (bos !== null) kvs.push({ key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: bos });
  if (eos !== null) kvs.push({ key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: eos });
  // add_bos_token: tokenizer_config.json's word, else whether the post-processor prepends a token.
  const addBos = cfg.addBosToken ?? JSON.stringify(tok.post_processor ?? null).includes('"single":[{"SpecialToken"');
  kvs.push(
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: addBos },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: cfg.addEosToken },
  );
  const template = cfg.chatTemplates.default;
  if (template !== undefined) kvs.push({ key: 'tokenizer.chat_template', type: 'str', value: template });
  return { model, kvs, warnings };
}
