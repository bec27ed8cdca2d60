// Test helper: locate ../shared/models (= /work/shared/models) and decide skip vs fail.
// Missing files skip a test with a reason locally, but fail it when CI === 'true'.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SHARED_MODELS = process.env.TOKENMILL_SHARED_MODELS ?? resolve(process.cwd(), '..', 'shared', 'models');

/** node:test `skip` value: a reason when any path is missing (and not in CI), else false. */
export function skipUnlessShared(...rel: string[]): string | false {
  const missing = rel.filter((r) => !existsSync(join(SHARED_MODELS, r)));
  if (missing.length === 0) return false;
  if (process.env.CI === 'true') return false; // run, and fail loudly in sharedPath()
  return `needs ${missing.map((m) => join(SHARED_MODELS, m)).join(', ')} (absent)`;
}

/** Absolute path of a shared file; throws a clear error when it is missing. */
export function sharedPath(rel: string): string {
  const p = join(SHARED_MODELS, rel);
  if (!existsSync(p)) throw new Error(`shared model file missing: ${p} (CI requires ../shared/models)`);
  return p;
}

export interface VocabVector {
  readonly text: string;
  readonly ids: number[];
}

/** llama.cpp test vectors: .inp strings split on the separator, .out lines of ids. */
export function readVocabVectors(name: string): VocabVector[] {
  const inp = readFileSync(sharedPath(`tokenizer-test-vectors/${name}.inp`), 'utf8');
  const out = readFileSync(sharedPath(`tokenizer-test-vectors/${name}.out`), 'utf8');
  const texts = inp.split('\n__ggml_vocab_test__\n');
  if (texts[texts.length - 1] === '') texts.pop();
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (texts.length !== lines.length) throw new Error(`${name}: ${texts.length} strings but ${lines.length} id lines`);
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(/\s+/).map(Number) }));
}
