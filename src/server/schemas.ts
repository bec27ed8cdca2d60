// Request schemas (zod) for the OpenAI routes and /tokenize, /detokenize. Unknown fields are
// accepted, then named in a response header (request-fields.ts; z.object strips them here); limits (messages, stop, n, logprobs) come from
// ServerLimits so one place sets them. Unsupported features are rejected later, in sampling.ts.

import { z } from 'zod';
import { TokenmillError } from '../util/errors.js';
import { extensionFields } from './request-fields.js';
import { functionToolSchema, toolCallSchema, toolChoiceSchema } from './tools/tool-request.js';

export interface ServerLimits {
  readonly maxMessages: number;
  readonly maxStop: number;
  readonly maxStopLength: number;
  readonly maxN: number;
  readonly maxLogprobs: number;
  /** Most prompts in one completions request (a list of prompts). */
  readonly maxPromptArray: number;
  /** Most choices in one response (prompts x n). */
  readonly maxChoices: number;
  /** Most tools in one request, and most calls in one assistant message. */
  readonly maxTools: number;
  readonly maxToolCalls: number;
  /** Most inputs in one /v1/embeddings request. */
  readonly maxEmbeddingInputs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxMessages: 512,
  maxStop: 16,
  maxStopLength: 256,
  maxN: 16,
  maxLogprobs: 20,
  maxPromptArray: 32,
  maxChoices: 64,
  maxTools: 128,
  maxToolCalls: 128,
  maxEmbeddingInputs: 256,
};

const int = () => z.number().int();
const num = () => z.number().finite();

function sampling(l: ServerLimits) {
  const stopItem = z.string().max(l.maxStopLength);
  return {
    model: z.string().max(256).nullish(),
    max_tokens: int().min(1).nullish(),
    temperature: num().min(0).max(2).nullish(),
    top_p: num().gt(0).max(1).nullish(),
    top_k: int().min(-1).nullish(),
    min_p: num().min(0).max(1).nullish(),
    n: int().min(1).max(l.maxN).nullish(),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
    stop: z.union([stopItem, z.array(stopItem).max(l.maxStop)]).nullish(),
    stop_token_ids: z.array(int().min(0)).max(l.maxStop).nullish(),
    seed: int()
      .min(-(2 ** 53) + 1)
      .max(2 ** 53 - 1)
      .nullish(),
    presence_penalty: num().min(-2).max(2).nullish(),
    frequency_penalty: num().min(-2).max(2).nullish(),
    repetition_penalty: num().gt(0).max(10).nullish(),
    logit_bias: z.record(z.string(), num().min(-100).max(100)).nullish(),
    ignore_eos: z.boolean().nullish(),
    user: z.string().nullish(),
    /** vLLM extension: lower runs first under --scheduling-policy priority (ignored by FCFS). */
    priority: int().min(-1_000_000).max(1_000_000).nullish(),
    // Fields accepted only in their "off" form; anything else is unsupported_feature (sampling.ts).
    best_of: int().min(1).nullish(),
    response_format: z.object({ type: z.string() }).loose().nullish(),
    functions: z.array(z.unknown()).nullish(),
    function_call: z.unknown().optional(),
    chat_template: z.unknown().optional(),
    guided_json: z.unknown().optional(),
    // vLLM / newer OpenAI fields: honoured or refused in request-fields.ts, never silently dropped.
    ...extensionFields,
  };
}

export function completionSchema(l: ServerLimits) {
  const tokenIds = z.array(int().min(0)).min(1);
  return z.object({
    ...sampling(l),
    prompt: z.union([
      z.string(),
      z.array(z.string()).min(1).max(l.maxPromptArray),
      tokenIds,
      z.array(tokenIds).min(1).max(l.maxPromptArray),
    ]),
    // Tools belong to chat; here they are accepted only to be refused clearly (sampling.ts).
    tools: z.array(z.unknown()).nullish(),
    tool_choice: z.unknown().optional(),
    logprobs: int().min(0).max(l.maxLogprobs).nullish(),
    echo: z.boolean().nullish(),
    suffix: z.string().nullish(),
  });
}

const textPart = z.object({ type: z.literal('text'), text: z.string() }).loose();
const otherPart = z.object({ type: z.string() }).loose();

export function chatSchema(l: ServerLimits) {
  const message = z
    .object({
      role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
      content: z.union([z.string(), z.array(z.union([textPart, otherPart])), z.null()]).optional(),
      name: z.string().max(256).nullish(),
      tool_calls: z.array(toolCallSchema).max(l.maxToolCalls).nullish(),
      tool_call_id: z.string().max(256).nullish(),
      /** An earlier answer's reasoning, for templates that render it (Qwen3). */
      reasoning_content: z.string().nullish(),
    })
    .loose();
  return z.object({
    ...sampling(l),
    messages: z.array(message).min(1).max(l.maxMessages),
    max_completion_tokens: int().min(1).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: int().min(0).max(l.maxLogprobs).nullish(),
    add_generation_prompt: z.boolean().nullish(),
    tools: z.array(functionToolSchema).max(l.maxTools).nullish(),
    tool_choice: toolChoiceSchema.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    /** Extra chat-template variables (enable_thinking, ...). */
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  });
}

export function embeddingSchema(l: ServerLimits) {
  const tokenIds = z.array(int().min(0)).min(1);
  return z.object({
    model: z.string().max(256).nullish(),
    input: z.union([
      z.string(),
      z.array(z.string()).min(1).max(l.maxEmbeddingInputs),
      tokenIds,
      z.array(tokenIds).min(1).max(l.maxEmbeddingInputs),
    ]),
    dimensions: int().min(1).nullish(),
    encoding_format: z.enum(['float', 'base64']).nullish(),
    user: z.string().nullish(),
    priority: int().min(-1_000_000).max(1_000_000).nullish(),
  });
}

export type CompletionBody = z.infer<ReturnType<typeof completionSchema>>;
export type ChatBody = z.infer<ReturnType<typeof chatSchema>>;
export type EmbeddingBody = z.infer<ReturnType<typeof embeddingSchema>>;
export type ChatMessageBody = ChatBody['messages'][number];

export const tokenizeSchema = z.union([
  z.object({ model: z.string().nullish(), prompt: z.string(), add_special_tokens: z.boolean().nullish() }),
  z.object({
    model: z.string().nullish(),
    messages: z.array(z.object({ role: z.string(), content: z.unknown() }).loose()).min(1),
    add_generation_prompt: z.boolean().nullish(),
  }),
]);
export const detokenizeSchema = z.object({ model: z.string().nullish(), tokens: z.array(int().min(0)) });

/** Parse body with schema or throw invalid_request naming the first offending field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new TokenmillError('invalid_request', 'The request body must be a JSON object.');
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  const where = param ? `'${param}': ` : '';
  throw new TokenmillError('invalid_request', `Invalid request: ${where}${issue.message}`, param === undefined ? {} : { param });
}
