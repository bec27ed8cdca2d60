// Prompts for the load generator and the offline engine bench: seeded synthetic token ids (exact
// input lengths, any vocabulary) or a JSONL file ({"prompt": "text" | [ids], "max_tokens"?: n} per
// line, cycled to the request count). The same seed always gives the same prompts.
import { readFileSync } from 'node:fs';
import { TokenmillError } from '../../util/errors.js';
import { seededRandom, type LoadPrompt } from './load-generator.js';

/** n prompts of inLen token ids drawn uniformly from [lowId, vocabSize) with a seeded PRNG. */
export function syntheticTokenPrompts(n: number, inLen: number, vocabSize: number, seed: number, lowId = 3): number[][] {
  if (!(vocabSize > lowId)) throw new TokenmillError('invalid_argument', `vocab size ${vocabSize} must exceed ${lowId}`);
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Array.from({ length: inLen }, () => lowId + Math.floor(rand() * (vocabSize - lowId))));
}

export function syntheticLoadPrompts(n: number, inLen: number, outLen: number, vocabSize: number, seed: number): LoadPrompt[] {
  return syntheticTokenPrompts(n, inLen, vocabSize, seed).map((prompt) => ({ prompt, maxTokens: outLen }));
}

/** Parse JSONL prompts; lines without max_tokens get defaultMaxTokens. Blank lines are skipped. */
export function parsePromptsJsonl(text: string, defaultMaxTokens: number, source = 'prompts'): LoadPrompt[] {
  const out: LoadPrompt[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim().length === 0) return;
    let j: { prompt?: unknown; max_tokens?: unknown };
    try {
      j = JSON.parse(line);
    } catch (e) {
      throw new TokenmillError('invalid_argument', `${source}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const p = j.prompt;
    const okIds = Array.isArray(p) && p.length > 0 && p.every((x) => Number.isInteger(x) && x >= 0);
    if (!(typeof p === 'string' && p.length > 0) && !okIds) {
      throw new TokenmillError('invalid_argument', `${source}:${i + 1}: "prompt" must be a non-empty string or an array of token ids`);
    }
    const mt = j.max_tokens;
    if (mt !== undefined && !(Number.isInteger(mt) && (mt as number) > 0))
      throw new TokenmillError('invalid_argument', `${source}:${i + 1}: "max_tokens" must be a positive integer`);
    out.push({ prompt: p as string | number[], maxTokens: (mt as number | undefined) ?? defaultMaxTokens });
  });
  if (out.length === 0) throw new TokenmillError('invalid_argument', `${source}: no prompts`);
  return out;
}

export function loadPromptsFile(path: string, defaultMaxTokens: number): LoadPrompt[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenmillError('file_not_found', `cannot read --prompts-file ${path}: ${(e as Error).message}`);
  }
  return parsePromptsJsonl(text, defaultMaxTokens, path);
}

/** Take n prompts, cycling through the list. */
export function cyclePrompts(list: readonly LoadPrompt[], n: number): LoadPrompt[] {
  return Array.from({ length: n }, (_, i) => list[i % list.length]!);
}
