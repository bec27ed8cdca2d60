// Validation of SamplingParams: every bad knob becomes TokenmillError('invalid_argument') naming the
// OpenAI request field (`param`) it came from. Pure; never clamps or rewrites a value silently.

import { TokenmillError } from '../util/errors.js';
import type { SamplingParams } from './sampling-params.js';

/** Most top logprobs per token (OpenAI's top_logprobs cap). */
export const MAX_TOP_LOGPROBS = 20;
/** OpenAI's logit_bias range. */
export const MAX_ABS_LOGIT_BIAS = 100;

function fail(param: string, message: string): never {
  throw new TokenmillError('invalid_argument', message, { param });
}

function checkNumber(param: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(param, `${param} must be a finite number, got ${String(v)}`);
  return v;
}

function checkInt(param: string, v: unknown): number {
  const n = checkNumber(param, v);
  if (!Number.isSafeInteger(n)) fail(param, `${param} must be an integer, got ${n}`);
  return n;
}

function checkRange(param: string, v: unknown, lo: number, hi: number, what: string): number {
  const n = checkNumber(param, v);
  if (n < lo || n > hi) fail(param, `${param} must be ${what}, got ${n}`);
  return n;
}

export interface ValidateOptions {
  /** When known, token ids (logit_bias keys, stop token ids) must be below it. */
  readonly vocabSize?: number;
}

/** Throw invalid_argument (with `param`) for the first bad field; return the params unchanged. */
export function validateSamplingParams(p: SamplingParams, opts: ValidateOptions = {}): SamplingParams {
  const temperature = checkNumber('temperature', p.temperature);
  if (temperature < 0) fail('temperature', `temperature must be >= 0, got ${temperature}`);
  const topK = checkInt('top_k', p.topK);
  if (topK < -1) fail('top_k', `top_k must be >= 0 (0 or -1 disables), got ${topK}`);
  const topP = checkNumber('top_p', p.topP);
  if (!(topP > 0 && topP <= 1)) fail('top_p', `top_p must be in (0, 1], got ${topP}`);
  checkRange('min_p', p.minP, 0, 1, 'in [0, 1]');
  const rep = checkNumber('repetition_penalty', p.repetitionPenalty);
  if (!(rep > 0)) fail('repetition_penalty', `repetition_penalty must be > 0, got ${rep}`);
  checkRange('presence_penalty', p.presencePenalty, -2, 2, 'in [-2, 2]');
  checkRange('frequency_penalty', p.frequencyPenalty, -2, 2, 'in [-2, 2]');
  if (!(p.logitBias instanceof Map)) fail('logit_bias', 'logit_bias must map token ids to numbers');
  for (const [tokenId, bias] of p.logitBias) {
    checkTokenId('logit_bias', tokenId, opts.vocabSize);
    checkRange(
      'logit_bias',
      bias,
      -MAX_ABS_LOGIT_BIAS,
      MAX_ABS_LOGIT_BIAS,
      `in [-${MAX_ABS_LOGIT_BIAS}, ${MAX_ABS_LOGIT_BIAS}] (token ${tokenId})`,
    );
  }
  if (p.seed !== null) checkInt('seed', p.seed);
  const maxTokens = checkInt('max_tokens', p.maxTokens);
  if (maxTokens < 1) fail('max_tokens', `max_tokens must be >= 1, got ${maxTokens}`);
  if (!Array.isArray(p.stop)) fail('stop', 'stop must be a list of strings');
  for (const s of p.stop) {
    if (typeof s !== 'string' || s.length === 0) fail('stop', 'stop strings must be non-empty strings');
  }
  if (!Array.isArray(p.stopTokenIds)) fail('stop_token_ids', 'stop_token_ids must be a list of token ids');
  for (const id of p.stopTokenIds) checkTokenId('stop_token_ids', id, opts.vocabSize);
  if (typeof p.ignoreEos !== 'boolean') fail('ignore_eos', 'ignore_eos must be a boolean');
  if (p.logprobs !== null) {
    const lp = checkInt('top_logprobs', p.logprobs);
    if (lp < 0 || lp > MAX_TOP_LOGPROBS) fail('top_logprobs', `top_logprobs must be in [0, ${MAX_TOP_LOGPROBS}], got ${lp}`);
  }
  const n = checkInt('n', p.n);
  if (n < 1) fail('n', `n must be >= 1, got ${n}`);
  return p;
}

function checkTokenId(param: string, id: unknown, vocabSize: number | undefined): void {
  const n = checkInt(param, id);
  if (n < 0) fail(param, `${param}: token id ${n} is negative`);
  if (vocabSize !== undefined && n >= vocabSize) throw tokenIdError(param, n, vocabSize);
}

/** invalid_argument for a token id outside [0, vocabSize), named by the request field it came from. */
export function tokenIdError(param: string, id: number, vocabSize: number): TokenmillError {
  return new TokenmillError('invalid_argument', `${param}: token id ${id} is outside the vocabulary [0, ${vocabSize}).`, { param });
}

/** Throw tokenIdError for the first id that is not an integer in [0, vocabSize). */
export function checkTokenIds(ids: readonly number[], vocabSize: number, param: string): void {
  for (const t of ids) if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw tokenIdError(param, t, vocabSize);
}
