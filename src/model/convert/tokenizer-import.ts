// importTokenizerDir: put a real tokenizer into a model directory (for random-weight models with a
// real vocabulary). An HF directory (tokenizer.json + tokenizer_config.json, chat_template.jinja /
// .json) is copied; a llama2.c tokenizer.bin (e.g. the Llama 2 vocabulary) is converted. The stop
// and BOS ids come from the tokenizer's own config, never from fixed numbers: see stopTokenIds().
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../../util/errors.js';
import { loadTokenizer, type ModelTokenizer } from '../tokenizer.js';
import { writeLlama2cTokenizer } from './llama2c.js';

/** Files an HF tokenizer directory may hold; copied when present (tokenizer.json is required). */
const HF_TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
];

/** End-of-turn tokens: a stop token when the chat template writes it (Llama 3 <|eot_id|>, ChatML <|im_end|>, Gemma). */
const END_OF_TURN = ['<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<end_of_turn>', '<|end|>'];
/** End-of-document tokens: a stop token whenever the vocabulary has it as a special token (base models emit it). */
const END_OF_TEXT = ['<|end_of_text|>', '<|endoftext|>', '</s>'];

export interface ImportedTokenizer {
  /** Number of ids the tokenizer knows (a model's vocab_size must be at least this). */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  /** Stop ids, the tokenizer's eos_token first (generation_config.json eos_token_id). */
  readonly eosTokenIds: readonly number[];
  readonly kind: 'hf' | 'llama2c';
  readonly hasChatTemplate: boolean;
}

export interface ImportTokenizerOptions {
  /** A chat template (Jinja source) written into tokenizer_config.json, replacing any the source has. */
  readonly chatTemplate?: string;
}

/**
 * Stop ids of a tokenizer: eos_token, then the end-of-turn tokens its chat template writes, then
 * end-of-text specials. Gives HF's own lists: Llama 3 Instruct [128001, 128009], Qwen3 [151645,
 * 151643], Llama 2 [2].
 */
export function stopTokenIds(tok: ModelTokenizer): number[] {
  const out: number[] = [];
  const add = (id: number | null) => {
    if (id !== null && !out.includes(id)) out.push(id);
  };
  add(tok.eosTokenId);
  const templates = Object.values(tok.chatTemplates).join('\n');
  for (const t of END_OF_TURN) {
    const id = tok.tokenId(t);
    if (id !== null && tok.isSpecial(id) && templates.includes(t)) add(id);
  }
  for (const t of END_OF_TEXT) {
    const id = tok.tokenId(t);
    if (id !== null && tok.isSpecial(id)) add(id);
  }
  return out;
}

/** Count the records of a llama2.c tokenizer.bin (the file does not store its vocabulary size). */
export function llama2cTokenizerSize(buf: Uint8Array, file: string): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 4;
  let n = 0;
  while (off + 8 <= buf.byteLength) {
    const len = dv.getInt32(off + 4, true);
    if (len < 0) break;
    off += 8 + len;
    n++;
  }
  if (off !== buf.byteLength || n < 3)
    throw new TokenmillError('tokenizer_invalid', `${file} is not a llama2.c tokenizer.bin (records do not end at the end of the file)`);
  return n;
}

function rewriteChatTemplate(outDir: string, template: string): void {
  const path = join(outDir, 'tokenizer_config.json');
  const cfg = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  cfg.chat_template = template;
  writeFileSync(path, JSON.stringify(cfg, null, 2) + '\n');
}

/** Copy or convert the tokenizer in srcDir into outDir; returns its vocab size and special ids. */
export function importTokenizerDir(srcDir: string, outDir: string, opts: ImportTokenizerOptions = {}): ImportedTokenizer {
  if (!existsSync(srcDir))
    throw new TokenmillError('file_not_found', `tokenizer directory ${srcDir} does not exist`, { details: { dir: srcDir } });
  let kind: ImportedTokenizer['kind'];
  try {
    mkdirSync(outDir, { recursive: true });
    if (existsSync(join(srcDir, 'tokenizer.json'))) {
      kind = 'hf';
      for (const f of HF_TOKENIZER_FILES) {
        if (!existsSync(join(srcDir, f))) continue;
        copyFileSync(join(srcDir, f), join(outDir, f));
        chmodSync(join(outDir, f), 0o644); // a read-only source (a package cache) must not make the copy read-only
      }
    } else if (existsSync(join(srcDir, 'tokenizer.bin'))) {
      kind = 'llama2c';
      const bin = join(srcDir, 'tokenizer.bin');
      writeLlama2cTokenizer(bin, llama2cTokenizerSize(readFileSync(bin), bin), 4096, outDir);
    } else {
      throw new TokenmillError('tokenizer_invalid', `${srcDir} has neither tokenizer.json (Hugging Face) nor tokenizer.bin (llama2.c)`, {
        details: { dir: srcDir },
      });
    }
    if (opts.chatTemplate !== undefined) rewriteChatTemplate(outDir, opts.chatTemplate);
  } catch (e) {
    if (e instanceof TokenmillError) throw e;
    throw new TokenmillError('io_error', `importing the tokenizer from ${srcDir}: ${(e as Error).message}`, { cause: e });
  }
  const tok = loadTokenizer(outDir);
  return {
    vocabSize: tok.vocabSize,
    bosTokenId: tok.bosTokenId,
    eosTokenIds: stopTokenIds(tok),
    kind,
    hasChatTemplate: Object.keys(tok.chatTemplates).length > 0,
  };
}
