// Loads @mlc-ai/web-xgrammar (xgrammar's own WASM build) in Node. The package is a UMD bundle in a
// "type": "module" package, so `import` sees no exports and `require` refuses it: we compile the
// file as a CommonJS module ourselves (node:module), once per process. Types the few calls we use.
import { createRequire, Module } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TokenmillError } from '../../util/errors.js';

/** The slice of xgrammar's API tokenmill uses (see node_modules/@mlc-ai/web-xgrammar/lib/xgrammar.d.ts). */
export interface XgTokenizerInfo {
  getVocabSize(): number;
  dispose(): void;
}

export interface XgCompiledGrammar {
  dispose(): void;
}

/** compileJSONSchema's options after the schema, in xgrammar's order. */
type XgJsonSchemaOptions = [
  anyWhitespace?: boolean,
  indent?: number,
  separators?: [string, string],
  strictMode?: boolean,
  maxWhitespaceCnt?: number,
];

export interface XgGrammarCompiler {
  compileJSONSchema(schema: string, ...options: XgJsonSchemaOptions): Promise<XgCompiledGrammar>;
  compileBuiltinJSONGrammar(): Promise<XgCompiledGrammar>;
  compileGrammar(grammar: string, rootRule?: string): Promise<XgCompiledGrammar>;
  compileStructuralTag(structuralTag: string | Record<string, unknown>): Promise<XgCompiledGrammar>;
  dispose(): void;
}

export interface XgGrammarMatcher {
  acceptToken(tokenId: number): boolean;
  /** Int32Array of ceil(vocab / 32) words; bit (id % 32) of word (id >> 5) set = id allowed. */
  getNextTokenBitmask(): Promise<Int32Array>;
  isTerminated(): boolean;
  reset(): void;
  rollBack(numTokens: number): void;
  getMaxRollbackTokens(): number;
  dispose(): void;
}

export interface XGrammar {
  TokenizerInfo: {
    createTokenizerInfo(
      encodedVocab: string[],
      vocabType?: string,
      prependSpaceInTokenization?: boolean,
      vocabSize?: number,
      stopTokenIds?: number[] | number,
    ): Promise<XgTokenizerInfo>;
  };
  GrammarCompiler: { createGrammarCompiler(info: XgTokenizerInfo, cacheEnabled?: boolean): Promise<XgGrammarCompiler> };
  /** JSON schema -> EBNF (root rule `root`), with the options of compileJSONSchema (xgrammar exports it under Testings). */
  Testings: {
    _jsonSchemaToEBNF(schema: string, ...options: XgJsonSchemaOptions): Promise<string>;
  };
  GrammarMatcher: {
    createGrammarMatcher(
      compiled: XgCompiledGrammar,
      overrideStopTokens?: number[] | number,
      terminateWithoutStopToken?: boolean,
      maxRollbackTokens?: number,
    ): Promise<XgGrammarMatcher>;
  };
}

let loading: Promise<XGrammar> | null = null;
/** Where the WASM module's stderr goes while captureNativeErrors() runs (else console.error). */
let errorSink: ((line: string) => void) | null = null;

/** The xgrammar module, compiled and instantiated once per process (~0.1 s). */
export function loadXGrammar(): Promise<XGrammar> {
  loading ??= instantiate();
  return loading;
}

/**
 * Run fn, collecting what xgrammar prints to stderr meanwhile: its C++ checks print "[FATAL] ...:
 * reason" and then throw a bare "Aborted()", so the printed line is the only useful message.
 * The module survives such an abort (checked: later compiles still work).
 */
export async function captureNativeErrors<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; lines: string[] }> {
  const lines: string[] = [];
  const prev = errorSink;
  errorSink = (line) => lines.push(line);
  try {
    return { value: await fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    errorSink = prev;
  }
}

async function instantiate(): Promise<XGrammar> {
  const x = compileBundle();
  // The WASM module binds console.error when it instantiates (on the first API call): route it
  // through errorSink so captureNativeErrors() can read the C++ messages.
  const original = console.error;
  const router = (...args: unknown[]): void => {
    if (errorSink !== null) errorSink(args.map(String).join(' '));
    else original(...args);
  };
  console.error = router;
  try {
    const info = await x.TokenizerInfo.createTokenizerInfo(['a'], 'raw', false, 1, [0]);
    info.dispose();
  } finally {
    console.error = original;
  }
  return x;
}

function compileBundle(): XGrammar {
  let file: string;
  try {
    file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  } catch (e) {
    throw new TokenmillError('backend_unavailable', `@mlc-ai/web-xgrammar is not installed: ${(e as Error).message}`, { cause: e });
  }
  // Module is typed without its internals; _compile and _nodeModulePaths are stable Node API since v0.x.
  const M = Module as unknown as { new (id: string): CjsModule; _nodeModulePaths(dir: string): string[] };
  const m = new M(file);
  m.filename = file;
  m.paths = M._nodeModulePaths(dirname(file));
  m._compile(readFileSync(file, 'utf8'), file);
  const x = m.exports as Partial<XGrammar>;
  if (x.TokenizerInfo === undefined || x.GrammarCompiler === undefined || x.GrammarMatcher === undefined) {
    throw new TokenmillError('backend_unavailable', `${file} did not export TokenizerInfo/GrammarCompiler/GrammarMatcher`);
  }
  return x as XGrammar;
}

interface CjsModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(source: string, filename: string): void;
}
