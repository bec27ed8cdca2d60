// ModelTokenizer: a model's tokenizer.json (via the HF `tokenizers` Rust bindings) plus
// tokenizer_config.json: per-model BOS handling (never doubled), special-token ids, vocab size and
// id -> raw token bytes (for the incremental detokenizer and logprobs `bytes`). Never renders templates.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { TokenmillError } from '../util/errors.js';
import { loadTokenizerConfig, parseTokenizerJsonObject, type TokenizerConfig } from './tokenizer-config.js';
import { loadGgufTokenizer, resolveGgufPath } from './gguf-model.js';
import { textShrinkBound } from './token-bound.js';
import { byteLevelToBytes, parseByteToken, SPM_SPACE } from './tokenizer-bytes.js';

/** How token strings map to bytes: GPT-2 byte-level, SentencePiece (▁ + <0xNN>), or plain text. */
export type TokenSpelling = 'byte_level' | 'sentencepiece' | 'plain';

export interface EncodeOptions {
  /** Add the model's special tokens (BOS when the model wants it). Default true. */
  readonly addSpecialTokens?: boolean;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

function decoderTypes(node: unknown, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (typeof o.type === 'string') out.push(o);
    if (Array.isArray(o.decoders)) for (const d of o.decoders) decoderTypes(d, out);
  }
  return out;
}

/** Inspect the decoder section of tokenizer.json (exported for tests). */
export function analyzeDecoder(decoder: unknown): { spelling: TokenSpelling; stripsLeadingSpace: boolean } {
  const parts = decoderTypes(decoder);
  const types = new Set(parts.map((p) => p.type as string));
  if (types.has('ByteLevel')) return { spelling: 'byte_level', stripsLeadingSpace: false };
  const spm =
    types.has('ByteFallback') ||
    types.has('Metaspace') ||
    parts.some((p) => p.type === 'Replace' && JSON.stringify(p.pattern ?? '').includes(SPM_SPACE));
  const strips = parts.some(
    (p) =>
      (p.type === 'Strip' && p.content === ' ' && Number(p.start ?? 0) >= 1) ||
      (p.type === 'Metaspace' && (p.prepend_scheme === 'always' || p.prepend_scheme === 'first' || p.add_prefix_space === true)),
  );
  return { spelling: spm ? 'sentencepiece' : 'plain', stripsLeadingSpace: strips };
}

export class ModelTokenizer {
  /** Number of token ids the tokenizer knows (max id + 1); a model's embedding may be larger. */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** Whether encode() with special tokens must start with BOS. */
  readonly addBos: boolean;
  readonly spelling: TokenSpelling;
  /** The decoder drops one leading space of the decoded text (SentencePiece dummy prefix). */
  readonly stripsLeadingSpace: boolean;
  readonly specialTokenIds: ReadonlySet<number>;
  private readonly addedContent = new Map<number, string>();
  private readonly bytesCache: (Uint8Array | undefined)[] = [];
  /** token-bound.ts: how much tokenization can shrink a text (null: without bound). */
  private readonly textShrink: number | null;
  private unitsPerToken: number | null | undefined;

  constructor(
    private readonly hf: HfTokenizer,
    tokenizerJson: Record<string, unknown>,
    readonly config: TokenizerConfig,
    readonly source: string,
  ) {
    const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as AddedTokenJson[]) : [];
    const special = new Set<number>();
    let maxId = hf.getVocabSize(true) - 1;
    for (const t of added) {
      if (typeof t.id !== 'number' || typeof t.content !== 'string') continue;
      this.addedContent.set(t.id, t.content);
      if (t.special === true) special.add(t.id);
      maxId = Math.max(maxId, t.id);
    }
    this.vocabSize = maxId + 1;
    this.bosTokenId = this.idOf(config.bosToken, 'bos_token');
    this.eosTokenId = this.idOf(config.eosToken, 'eos_token');
    // add_bos_token when written; otherwise a model that names a BOS wants it (early Llama 3 files do
    // not add it in the post-processor, so we prepend it ourselves; see encode()).
    this.addBos = this.bosTokenId !== null && (config.addBosToken ?? true);
    if (this.bosTokenId !== null) special.add(this.bosTokenId);
    if (this.eosTokenId !== null) special.add(this.eosTokenId);
    this.specialTokenIds = special;
    const d = analyzeDecoder(tokenizerJson.decoder);
    this.spelling = d.spelling;
    this.stripsLeadingSpace = d.stripsLeadingSpace;
    this.textShrink = textShrinkBound(tokenizerJson);
  }

  /**
   * The most UTF-16 units of text one token stands for (null: no bound holds for this tokenizer), so
   * a text longer than maxTokens x this cannot have maxTokens tokens. Computed on first use (a pass
   * over the vocabulary).
   */
  maxUnitsPerToken(): number | null {
    if (this.unitsPerToken !== undefined) return this.unitsPerToken;
    let maxBytes = 1;
    if (this.textShrink !== null) {
      for (let id = 0; id < this.vocabSize; id++) {
        const t = this.tokenString(id);
        if (t !== null) maxBytes = Math.max(maxBytes, Buffer.byteLength(t, 'utf8'));
      }
    }
    this.unitsPerToken = this.textShrink === null ? null : Math.ceil(maxBytes * this.textShrink);
    return this.unitsPerToken;
  }

  private idOf(token: string | null, field: string): number | null {
    if (token === null) return null;
    const id = this.hf.tokenToId(token);
    if (id === null || id === undefined) {
      const cfgFile = this.config.sourceFile;
      const from = this.config.fromFile && cfgFile !== undefined && cfgFile !== this.source ? ` (set in ${cfgFile})` : '';
      const shown = JSON.stringify(token.length > 64 ? `${token.slice(0, 64)}...` : token);
      throw new TokenmillError('tokenizer_invalid', `${this.source}: ${field} ${shown}${from} is not in the vocabulary`);
    }
    return id;
  }

  /** Token ids of text; with addSpecialTokens (default) BOS is present exactly once when the model wants it. */
  async encode(text: string, opts: EncodeOptions = {}): Promise<number[]> {
    const addSpecial = opts.addSpecialTokens ?? true;
    let ids: number[];
    try {
      ids = (await this.hf.encode(text, null, { addSpecialTokens: addSpecial })).getIds();
    } catch (e) {
      throw new TokenmillError('tokenizer_invalid', `encoding failed: ${(e as Error).message}`, { cause: e });
    }
    const bos = this.bosTokenId;
    if (!addSpecial || bos === null) return ids;
    if (this.addBos && ids[0] !== bos) return [bos, ...ids];
    // The post-processor added BOS and the text (a rendered chat template) began with it too.
    if (ids[0] === bos && ids[1] === bos && this.config.bosToken !== null && text.startsWith(this.config.bosToken)) return ids.slice(1);
    return ids;
  }

  /** Text of ids as HF decode() gives it (skipSpecialTokens default true). */
  async decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    try {
      return await this.hf.decode(
        ids.filter((id) => id >= 0 && id < this.vocabSize),
        opts.skipSpecialTokens ?? true,
      );
    } catch (e) {
      throw new TokenmillError('tokenizer_invalid', `decoding failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The token's vocabulary string (e.g. "ĠHello", "▁Hello", "<0x0A>"); null when out of range. */
  tokenString(id: number): string | null {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return null;
    return this.addedContent.get(id) ?? this.hf.idToToken(id) ?? null;
  }

  tokenId(token: string): number | null {
    return this.hf.tokenToId(token) ?? null;
  }

  /** Id of the added token whose content is exactly text (markers such as <tool_call>), else null. */
  addedTokenId(content: string): number | null {
    for (const [id, c] of this.addedContent) if (c === content) return id;
    return null;
  }

  isSpecial(id: number): boolean {
    return this.specialTokenIds.has(id);
  }

  /**
   * Raw bytes this token contributes to the text (a leading "▁" is a space; <0xNN> is one byte;
   * added tokens are their content). Empty for ids outside the tokenizer (padded embedding rows).
   */
  tokenBytes(id: number): Uint8Array {
    const hit = this.bytesCache[id];
    if (hit) return hit;
    const tok = this.tokenString(id);
    if (tok === null) return EMPTY;
    let bytes: Uint8Array;
    if (this.addedContent.has(id)) bytes = utf8.encode(tok);
    else if (this.spelling === 'byte_level') bytes = byteLevelToBytes(tok) ?? utf8.encode(tok);
    else if (this.spelling === 'sentencepiece') {
      const b = parseByteToken(tok);
      bytes = b !== null ? Uint8Array.of(b) : utf8.encode(tok.replaceAll(SPM_SPACE, ' '));
    } else bytes = utf8.encode(tok);
    this.bytesCache[id] = bytes;
    return bytes;
  }

  /** Named chat templates from the config ('default' for a plain string). */
  get chatTemplates(): Readonly<Record<string, string>> {
    return this.config.chatTemplates;
  }
}

export interface LoadTokenizerOptions {
  /** BOS/EOS ids from config.json, used only when the directory has no tokenizer_config.json. */
  readonly fallbackBosTokenId?: number | null;
  readonly fallbackEosTokenId?: number | null;
}

/** Load dir/tokenizer.json and dir/tokenizer_config.json. Throws tokenizer_invalid. */
export function loadTokenizer(dir: string, opts: LoadTokenizerOptions = {}): ModelTokenizer {
  const gguf = resolveGgufPath(dir);
  if (gguf !== null) return loadGgufTokenizer(gguf);
  const path = join(dir, 'tokenizer.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenmillError('tokenizer_invalid', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return tokenizerFromText(text, path, loadTokenizerConfig(dir), opts);
}

/**
 * A tokenizer from tokenizer.json text and a parsed config (a directory's files, or the ones a GGUF
 * file's metadata describes: model/gguf-model.ts). `path` labels errors.
 */
export function tokenizerFromText(text: string, path: string, cfg: TokenizerConfig, opts: LoadTokenizerOptions = {}): ModelTokenizer {
  const json = parseTokenizerJsonObject(text, path);
  let hf: HfTokenizer;
  try {
    hf = HfTokenizer.fromString(text);
  } catch (e) {
    throw new TokenmillError('tokenizer_invalid', `${path} cannot be loaded: ${(e as Error).message}`, { cause: e });
  }
  let config = cfg;
  if (!config.fromFile) {
    const name = (id: number | null | undefined) => (id === null || id === undefined ? null : (hf.idToToken(id) ?? null));
    config = { ...config, bosToken: name(opts.fallbackBosTokenId), eosToken: name(opts.fallbackEosTokenId) };
  }
  return new ModelTokenizer(hf, json, config, path);
}
