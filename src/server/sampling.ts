// Request body -> SamplingParams: defaults and synonyms (max_completion_tokens; the default
// max_tokens is the context left) and the clear 400 for features not supported yet (legacy
// functions, in-request chat templates); response_format becomes the engine's constraint
// (structured-output.ts). Ranges and the context length are the engine's to check.

import { samplingParams, type SamplingParams } from '../engine/sampling-params.js';
import { TokenmillError } from '../util/errors.js';
import type { ChatBody, CompletionBody } from './schemas.js';
import { constraintOfResponseFormat } from './structured-output.js';

export type RouteKind = 'chat' | 'completion';

/** OpenAI's legacy completions default; chat defaults to whatever context is left. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

function unsupported(param: string, what: string): TokenmillError {
  return new TokenmillError('unsupported_feature', `${what} is not supported by tokenmill yet; remove '${param}' from the request.`, {
    param,
  });
}

/** Throw unsupported_feature for anything the engine cannot honour yet. */
export function rejectUnsupported(body: CompletionBody | ChatBody, kind: RouteKind): void {
  if (body.functions && body.functions.length > 0) throw unsupported('functions', 'Function calling');
  if (body.function_call !== undefined && body.function_call !== null && body.function_call !== 'none' && body.function_call !== 'auto') {
    throw unsupported('function_call', 'Function calling');
  }
  if (body.chat_template !== undefined && body.chat_template !== null) {
    throw new TokenmillError(
      'unsupported_feature',
      "Chat templates inside requests are refused; the model's own template is used. Remove 'chat_template'.",
      { param: 'chat_template' },
    );
  }
  if (body.guided_json !== undefined && body.guided_json !== null) throw unsupported('guided_json', 'Guided decoding');
  const n = body.n ?? 1;
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== n && body.best_of !== 1)
    throw unsupported('best_of', 'best_of different from n');
  if (kind === 'completion') {
    const c = body as CompletionBody;
    if (c.tools && c.tools.length > 0) throw unsupported('tools', 'Tool calling on /v1/completions (use /v1/chat/completions)');
    const tc = c.tool_choice;
    if (tc !== undefined && tc !== null && tc !== 'none' && tc !== 'auto')
      throw unsupported('tool_choice', 'Tool calling on /v1/completions');
    if (c.echo) throw unsupported('echo', 'echo');
    if (c.suffix) throw unsupported('suffix', 'suffix (fill-in-the-middle)');
  }
}

export interface ContextInfo {
  readonly numPromptTokens: number;
  readonly maxModelLen: number;
}

/**
 * The max tokens a request asks for, resolving synonyms and defaults (the context left, at least 1).
 * Whether it fits the context is the engine's check (engine/request-validate.ts), like every range.
 */
export function resolveMaxTokens(body: CompletionBody | ChatBody, kind: RouteKind, ctx: ContextInfo): number {
  const explicit = kind === 'chat' ? ((body as ChatBody).max_completion_tokens ?? body.max_tokens) : body.max_tokens;
  const room = Math.max(ctx.maxModelLen - ctx.numPromptTokens, 1);
  return explicit ?? (kind === 'completion' ? Math.min(COMPLETIONS_DEFAULT_MAX_TOKENS, room) : room);
}

/** logit_bias's JSON keys -> token ids; their range is checked with the other params by the engine. */
function logitBias(raw: Record<string, number> | null | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (!raw) return out;
  for (const [k, v] of Object.entries(raw)) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || !Number.isSafeInteger(id)) {
      throw new TokenmillError('invalid_request', `logit_bias key '${k}' is not a token id.`, { param: 'logit_bias' });
    }
    out.set(id, v);
  }
  return out;
}

/** Number of top logprobs per token (null = logprobs off). */
export function resolveLogprobs(body: CompletionBody | ChatBody, kind: RouteKind): number | null {
  if (kind === 'completion') return (body as CompletionBody).logprobs ?? null;
  const c = body as ChatBody;
  if (c.top_logprobs !== undefined && c.top_logprobs !== null && c.top_logprobs > 0 && !c.logprobs) {
    throw new TokenmillError('invalid_request', 'top_logprobs requires logprobs: true.', { param: 'top_logprobs' });
  }
  return c.logprobs ? (c.top_logprobs ?? 0) : null;
}

export function buildSamplingParams(body: CompletionBody | ChatBody, kind: RouteKind, ctx: ContextInfo): SamplingParams {
  const stopRaw = body.stop ?? [];
  const stop = (typeof stopRaw === 'string' ? [stopRaw] : stopRaw).filter((s) => s.length > 0);
  const topK = body.top_k ?? 0;
  const constraint = constraintOfResponseFormat(body.response_format);
  if (constraint !== null && stop.length > 0) {
    throw new TokenmillError(
      'invalid_request',
      "stop strings would cut a structured output short; remove 'stop' when response_format asks for JSON.",
      { param: 'stop' },
    );
  }
  return samplingParams({
    temperature: body.temperature ?? 1,
    topK: topK < 0 ? 0 : topK,
    topP: body.top_p ?? 1,
    minP: body.min_p ?? 0,
    repetitionPenalty: body.repetition_penalty ?? 1,
    presencePenalty: body.presence_penalty ?? 0,
    frequencyPenalty: body.frequency_penalty ?? 0,
    logitBias: logitBias(body.logit_bias),
    seed: body.seed ?? null,
    maxTokens: resolveMaxTokens(body, kind, ctx),
    stop,
    includeStopStrInOutput: body.include_stop_str_in_output ?? false,
    stopTokenIds: body.stop_token_ids ?? [],
    ignoreEos: body.ignore_eos ?? false,
    logprobs: resolveLogprobs(body, kind),
    n: body.n ?? 1,
    constraint,
  });
}
