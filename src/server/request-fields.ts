// Request fields beyond the sampling core, so that nothing accepted is ignored without a trace
// (issue 13): vLLM / OpenAI fields that would change the answer if ignored are accepted in their
// neutral form only and otherwise refused with a 400 naming the field; fields that cannot change the
// answer but ask for something tokenmill does not do (store, metadata, a service tier) and fields no
// schema knows (newer SDKs send newer fields) are accepted and named in the x-tokenmill-ignored-fields
// response header (and logged); `user` is honoured as the request's log tag.
import { z } from 'zod';
import { TokenmillError } from '../util/errors.js';

/** Extra fields of /v1/completions and /v1/chat/completions (spread into both schemas). */
export const extensionFields = {
  /** vLLM: keep the matched stop string at the end of the text (honoured). */
  include_stop_str_in_output: z.boolean().nullish(),
  min_tokens: z.number().int().min(0).nullish(),
  skip_special_tokens: z.boolean().nullish(),
  spaces_between_special_tokens: z.boolean().nullish(),
  use_beam_search: z.boolean().nullish(),
  length_penalty: z.number().finite().nullish(),
  truncate_prompt_tokens: z.number().int().nullish(),
  prompt_logprobs: z.number().int().nullish(),
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  service_tier: z.string().nullish(),
  reasoning_effort: z.string().nullish(),
  modalities: z.array(z.string()).nullish(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
  /** vLLM chat extensions. */
  echo: z.boolean().nullish(),
  continue_final_message: z.boolean().nullish(),
  add_special_tokens: z.boolean().nullish(),
};

type ExtensionBody = { [K in keyof typeof extensionFields]?: unknown };

function refuse(param: string, why: string): TokenmillError {
  return new TokenmillError('unsupported_feature', `'${param}' ${why}; remove it from the request.`, { param });
}

const set = (v: unknown): boolean => v !== undefined && v !== null;

/**
 * Throw unsupported_feature for an extension field in a form that would change the answer if
 * ignored; return the fields accepted without effect (for x-tokenmill-ignored-fields).
 */
export function rejectIgnoredFields(body: ExtensionBody, kind: 'chat' | 'completion'): string[] {
  if (typeof body.min_tokens === 'number' && body.min_tokens > 0)
    throw refuse('min_tokens', 'is not supported (EOS cannot be held back yet)');
  if (body.skip_special_tokens === false)
    throw refuse('skip_special_tokens', 'false is not supported (special tokens are always skipped in text)');
  if (body.spaces_between_special_tokens === false) throw refuse('spaces_between_special_tokens', 'false is not supported');
  if (body.use_beam_search === true) throw refuse('use_beam_search', 'is not supported (no beam search)');
  if (typeof body.length_penalty === 'number' && body.length_penalty !== 1)
    throw refuse('length_penalty', 'applies to beam search, which is not supported');
  if (set(body.truncate_prompt_tokens)) throw refuse('truncate_prompt_tokens', 'is not supported (prompts are never truncated)');
  if (set(body.prompt_logprobs)) throw refuse('prompt_logprobs', 'is not supported');
  const noEffect: string[] = [];
  if (body.store === true) noEffect.push('store'); // tokenmill keeps no completions
  if (body.metadata !== undefined && body.metadata !== null && Object.keys(body.metadata as object).length > 0) noEffect.push('metadata');
  if (typeof body.service_tier === 'string' && body.service_tier !== 'auto' && body.service_tier !== 'default')
    noEffect.push('service_tier'); // one tier
  if (set(body.reasoning_effort))
    throw refuse('reasoning_effort', 'is not supported (for Qwen3-style thinking use chat_template_kwargs.enable_thinking)');
  if (Array.isArray(body.modalities) && body.modalities.some((m) => m !== 'text'))
    throw refuse('modalities', 'other than ["text"] are not supported');
  if (set(body.audio)) throw refuse('audio', 'output is not supported');
  if (set(body.prediction)) throw refuse('prediction', '(predicted outputs) is not supported');
  if (set(body.web_search_options)) throw refuse('web_search_options', '(web search) is not supported');
  if (kind === 'chat') {
    if (body.echo === true) throw refuse('echo', 'on chat completions is not supported');
    if (body.continue_final_message === true) throw refuse('continue_final_message', 'is not supported');
    if (body.add_special_tokens === true)
      throw refuse('add_special_tokens', 'true is not supported on chat (the template writes the special tokens)');
  } else if (set(body.continue_final_message) || set(body.add_special_tokens)) {
    throw refuse(set(body.continue_final_message) ? 'continue_final_message' : 'add_special_tokens', 'is a chat completions field');
  }
  return noEffect;
}

/** Top-level fields of a raw body that the route's schema does not know (sorted). */
export function unknownFields(schema: { readonly shape: Record<string, unknown> }, raw: unknown): string[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  return Object.keys(raw)
    .filter((k) => !Object.hasOwn(schema.shape, k))
    .sort();
}
