// The one validation boundary for an EngineRequest: the prompt's token ids, the sampling params,
// n, the context length and the embedding rules, each problem with one typed error and one wording.
// Engine.validateRequest() runs it (AsyncEngine once per request, before queueing or compiling a
// grammar); the server and the layers below trust it and never re-check. Pure.

import { TokenmillError } from '../util/errors.js';
import type { EngineRequest } from './engine-api.js';
import { checkTokenIds, validateSamplingParams } from './sampling-validate.js';

export interface RequestLimits {
  readonly vocabSize: number;
  readonly maxModelLen: number;
  /** Whether the model returns hidden states (embedding requests need them). */
  readonly canEmbed: boolean;
}

/** The OpenAI field a request's prompt came from ('messages', 'prompt.1', 'input'); default 'prompt'. */
export function promptParamOf(er: EngineRequest): string {
  return er.promptParam ?? 'prompt';
}

/** Prompt tokens plus requested tokens over the model's context (numMaxTokens 0 for an embedding). */
export function contextLengthError(maxModelLen: number, numPromptTokens: number, numMaxTokens: number, param: string): TokenmillError {
  const what = param.replace(/\.\d+$/, '');
  const reduce = numMaxTokens > 0 ? `the length of the ${what} or of max_tokens` : `the length of the ${what}`;
  return new TokenmillError(
    'context_length_exceeded',
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${numPromptTokens + numMaxTokens} tokens ` +
      `(${numPromptTokens} in the ${what}, ${numMaxTokens} for the completion). Please reduce ${reduce}.`,
    { param, details: { promptTokens: numPromptTokens, maxTokens: numMaxTokens, maxModelLen } },
  );
}

/** Throw the first problem of a request (invalid_argument, context_length_exceeded, unsupported_feature). */
export function validateEngineRequest(er: EngineRequest, limits: RequestLimits): void {
  const prompt = er.promptTokenIds;
  const p = er.params;
  const param = promptParamOf(er);
  if (prompt.length === 0) throw new TokenmillError('invalid_argument', `${param}: the prompt is empty (0 tokens).`, { param });
  checkTokenIds(prompt, limits.vocabSize, param);
  validateSamplingParams(p, { vocabSize: limits.vocabSize }); // invalid_argument naming the OpenAI param; n >= 1 too
  const embedding = (er.pooling ?? null) !== null;
  if (embedding) {
    if (p.n !== 1) throw new TokenmillError('invalid_argument', `an embedding request has n = 1, got ${p.n}`, { param: 'n' });
    if (!limits.canEmbed) {
      throw new TokenmillError('unsupported_feature', 'this model cannot return hidden states, so it serves no embeddings');
    }
    if (p.constraint !== null) {
      throw new TokenmillError('invalid_argument', 'an embedding request cannot carry a constraint', { param: 'response_format' });
    }
  }
  // An embedding generates nothing: its prompt alone may fill the context.
  const numMaxTokens = embedding ? 0 : p.maxTokens;
  if (prompt.length + numMaxTokens > limits.maxModelLen) throw contextLengthError(limits.maxModelLen, prompt.length, numMaxTokens, param);
}
