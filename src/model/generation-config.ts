// generation_config.json -> GenerationConfig (optional file): stop tokens and the model's sampling
// defaults. Like config.ts, HF field names live only here; absent file means "no defaults".
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TokenmillError } from '../util/errors.js';
import { readJsonFile } from './config.js';

export interface GenerationConfig {
  readonly bosTokenId: number | null;
  /** eos_token_id as a list (it may be a number or an array in the file). */
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  /** Sampling defaults the model ships with; undefined when the file does not say. */
  readonly doSample?: boolean;
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly repetitionPenalty?: number;
  readonly maxNewTokens?: number;
}

export const EMPTY_GENERATION_CONFIG: GenerationConfig = { bosTokenId: null, eosTokenIds: [], padTokenId: null };

function invalid(file: string, field: string, why: string): TokenmillError {
  return new TokenmillError('config_invalid', `${file}: field '${field}' ${why}`, { details: { file, field } });
}

function tokenIds(raw: Record<string, unknown>, field: string, file: string): number[] {
  const v = raw[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0))
    throw invalid(file, field, 'must be a token id or a list of token ids');
  return list as number[];
}

function num(raw: Record<string, unknown>, field: string, file: string, check: (x: number) => boolean, why: string): number | undefined {
  const v = raw[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw invalid(file, field, why);
  return v;
}

export function parseGenerationConfig(raw: unknown, file = 'generation_config.json'): GenerationConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new TokenmillError('config_invalid', `${file}: must be a JSON object`, { details: { file } });
  const r = raw as Record<string, unknown>;
  if (r.do_sample !== undefined && typeof r.do_sample !== 'boolean') throw invalid(file, 'do_sample', 'must be true or false');
  const out: GenerationConfig = {
    bosTokenId: tokenIds(r, 'bos_token_id', file)[0] ?? null,
    eosTokenIds: tokenIds(r, 'eos_token_id', file),
    padTokenId: tokenIds(r, 'pad_token_id', file)[0] ?? null,
    doSample: r.do_sample as boolean | undefined,
    temperature: num(r, 'temperature', file, (x) => x >= 0, 'must be >= 0'),
    topP: num(r, 'top_p', file, (x) => x > 0 && x <= 1, 'must be in (0, 1]'),
    topK: num(r, 'top_k', file, (x) => Number.isInteger(x) && x >= 0, 'must be a non-negative integer'),
    repetitionPenalty: num(r, 'repetition_penalty', file, (x) => x > 0, 'must be > 0'),
    maxNewTokens: num(r, 'max_new_tokens', file, (x) => Number.isInteger(x) && x > 0, 'must be a positive integer'),
  };
  // Drop undefined keys so the object prints and compares cleanly.
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as unknown as GenerationConfig;
}

/** Read <dir>/generation_config.json; EMPTY_GENERATION_CONFIG when the file is absent. */
export function loadGenerationConfig(dir: string): GenerationConfig {
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path)) return EMPTY_GENERATION_CONFIG;
  return parseGenerationConfig(readJsonFile(path, 'config_invalid'), path);
}
