// GrammarCompilerCache: one per (tokenizer, logits row size, stop ids): xgrammar's TokenizerInfo
// (built once, ~0.2-0.4 s for a 150k vocabulary) and compiled grammars cached by constraintKey()
// (a schema compiles in ~0.1-0.7 s, on this thread: the WASM build has no threads), with concurrent
// compiles of one key shared. Compile failures become 400s. Matchers are made per sequence
// (sequence-grammar.ts); this file never touches a logits row.
import { TokenmillError } from '../../util/errors.js';
import { log } from '../../util/logger.js';
import { constraintKey, type Constraint, type StructuralTagFormat } from '../constraint.js';
import { encodeVocab, type GrammarVocabSource } from './grammar-vocab.js';
import { grammarSchema } from './schema-support.js';
import { Utf8Masks } from './utf8-mask.js';
import {
  captureNativeErrors,
  loadXGrammar,
  type XGrammar,
  type XgCompiledGrammar,
  type XgGrammarCompiler,
  type XgTokenizerInfo,
} from './xgrammar-loader.js';

/**
 * Compiled grammars kept per tokenizer (least recently used evicted and freed). Each holds its
 * token-mask cache in the WASM heap: ~40 MB for a 150k vocabulary (measured: 40 small schemas over
 * Qwen3's vocabulary grew RSS by 1.6 GB; with 16 kept it levels at ~0.65 GB above the vocabulary),
 * and the 32-bit WASM heap stops at 4 GB.
 */
export const GRAMMAR_CACHE_ENTRIES = 16;
/** Whitespace characters the JSON grammars allow between two tokens of JSON (xgrammar's any_whitespace cap). */
export const MAX_JSON_WHITESPACE = 8;

export interface CompiledConstraint {
  readonly key: string;
  readonly constraint: Constraint;
  readonly compiled: XgCompiledGrammar;
  /** Milliseconds the compile took (0 for a cache hit). */
  readonly compileMs: number;
}

export class GrammarCompilerCache {
  private readonly done = new Map<string, CompiledConstraint>();
  private readonly inflight = new Map<string, Promise<CompiledConstraint>>();

  private constructor(
    readonly xg: XGrammar,
    readonly info: XgTokenizerInfo,
    private readonly compiler: XgGrammarCompiler,
    readonly vocabSize: number,
    readonly stopTokenIds: readonly number[],
    /** Per UTF-8 decoder state, the tokens that keep the bytes valid (every mask is ANDed with one). */
    readonly utf8: Utf8Masks,
  ) {}

  static async create(tok: GrammarVocabSource, rowSize: number, stopTokenIds: readonly number[]): Promise<GrammarCompilerCache> {
    const xg = await loadXGrammar();
    const t0 = performance.now();
    const v = encodeVocab(tok, rowSize);
    const info = await xg.TokenizerInfo.createTokenizerInfo(v.encoded, v.vocabType, v.prependSpace, rowSize, [...stopTokenIds]);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
    const utf8 = new Utf8Masks(v.bytes, rowSize);
    log.debug(`grammar: tokenizer info for ${rowSize} tokens (${v.vocabType}) in ${(performance.now() - t0).toFixed(0)} ms`);
    return new GrammarCompilerCache(xg, info, compiler, rowSize, stopTokenIds, utf8);
  }

  /** The compiled grammar when it is cached (no compile). */
  lookup(c: Constraint): CompiledConstraint | undefined {
    const key = constraintKey(c);
    const hit = this.done.get(key);
    if (hit !== undefined) {
      this.done.delete(key); // refresh LRU order
      this.done.set(key, hit);
    }
    return hit;
  }

  /** Compile (or share the compile of) a constraint already checked by checkConstraint(). */
  compile(c: Constraint): Promise<CompiledConstraint> {
    const hit = this.lookup(c);
    if (hit !== undefined) return Promise.resolve(hit);
    const key = constraintKey(c);
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.compileNow(key, c).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async compileNow(key: string, c: Constraint): Promise<CompiledConstraint> {
    const t0 = performance.now();
    const r = await captureNativeErrors(() => this.compileRaw(c));
    if (r.value === undefined) {
      const why =
        r.lines.find((l) => l.includes('[FATAL]'))?.replace(/^.*\[FATAL\][^:]*:\d+:\s*/, '') ??
        (r.error as Error | undefined)?.message ??
        'unknown error';
      throw new TokenmillError('invalid_schema', `the ${c.type} constraint cannot be compiled: ${why}`, {
        param: paramOf(c),
        cause: r.error,
      });
    }
    const compileMs = performance.now() - t0;
    log.debug(`grammar: compiled ${c.type} ${key.slice(0, 12)} in ${compileMs.toFixed(0)} ms`);
    const entry: CompiledConstraint = { key, constraint: c, compiled: r.value, compileMs };
    this.done.set(key, entry);
    while (this.done.size > GRAMMAR_CACHE_ENTRIES) {
      const [oldKey, old] = this.done.entries().next().value as [string, CompiledConstraint];
      this.done.delete(oldKey);
      old.compiled.dispose(); // live matchers hold their own reference to the grammar
    }
    return { ...entry, compileMs };
  }

  private compileRaw(c: Constraint): Promise<XgCompiledGrammar> {
    switch (c.type) {
      case 'json_object':
        // Any object: a schema without declared properties, not strict (extra properties allowed).
        return this.compiler.compileJSONSchema('{"type":"object"}', true, undefined, undefined, false, MAX_JSON_WHITESPACE);
      case 'json_schema':
        // strictMode: undeclared properties/items are refused unless the schema allows them.
        return this.compiler.compileJSONSchema(
          JSON.stringify(grammarSchema(c.schema)),
          true,
          undefined,
          undefined,
          true,
          MAX_JSON_WHITESPACE,
        );
      case 'structural_tag':
        return rewriteFormat(this.xg, c.format).then((format) =>
          this.compiler.compileStructuralTag(JSON.stringify({ type: 'structural_tag', format })),
        );
      case 'ebnf':
        return this.compiler.compileGrammar(c.grammar, c.rootRule ?? 'root');
      case 'regex':
        return this.compiler.compileStructuralTag(
          JSON.stringify({ type: 'structural_tag', format: { type: 'regex', pattern: c.pattern } }),
        );
    }
  }
}

/**
 * A structural tag with grammarSchema() applied to every JSON schema inside it. JSON schema contents
 * (tool-call arguments) become EBNF grammars of one-line JSON with `, ` and `: ` separators, the
 * layout chat templates and models use for calls: xgrammar's own json_schema tag content allows
 * unlimited whitespace, which a random or weak model fills until max_tokens.
 */
async function rewriteFormat(xg: XGrammar, f: StructuralTagFormat): Promise<StructuralTagFormat> {
  switch (f.type) {
    case 'json_schema': {
      const grammar = await xg.Testings._jsonSchemaToEBNF(JSON.stringify(grammarSchema(f.json_schema)), false, -1, [', ', ': '], true);
      return { type: 'grammar', grammar };
    }
    case 'qwen_xml_parameter':
      return { ...f, json_schema: grammarSchema(f.json_schema) };
    case 'sequence':
    case 'or':
      return { ...f, elements: await Promise.all(f.elements.map((e) => rewriteFormat(xg, e))) };
    case 'tag':
      return { ...f, content: await rewriteFormat(xg, f.content) };
    case 'triggered_tags':
    case 'tags_with_separator':
      return { ...f, tags: await Promise.all(f.tags.map(async (t) => ({ ...t, content: await rewriteFormat(xg, t.content) }))) };
    default:
      return f;
  }
}

function paramOf(c: Constraint): string {
  return c.type === 'structural_tag' ? 'tools' : 'response_format';
}

/** Caches per tokenizer object, so engines over one tokenizer (tests, restarts) share the vocabulary work. */
const perTokenizer = new WeakMap<object, Map<string, Promise<GrammarCompilerCache>>>();

export function grammarCompilerFor(
  tok: GrammarVocabSource,
  rowSize: number,
  stopTokenIds: readonly number[],
): Promise<GrammarCompilerCache> {
  let m = perTokenizer.get(tok);
  if (m === undefined) {
    m = new Map();
    perTokenizer.set(tok, m);
  }
  const k = `${rowSize}|${[...stopTokenIds].sort((a, b) => a - b).join(',')}`;
  let p = m.get(k);
  if (p === undefined) {
    p = GrammarCompilerCache.create(tok, rowSize, stopTokenIds);
    p.catch(() => m.delete(k));
    m.set(k, p);
  }
  return p;
}
