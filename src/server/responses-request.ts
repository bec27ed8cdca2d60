// /v1/responses request -> the equivalent chat request. The Responses API is served by the chat
// pipeline (template, sampling, tools, structured output), so this file only translates: input
// items -> messages (instructions first, function_call items -> assistant tool_calls,
// function_call_output -> tool messages), tools / tool_choice / text.format -> their chat forms.
// tokenmill stores nothing, so everything that needs stored state is a 400 here.

import { z } from 'zod';
import { TokenmillError } from '../util/errors.js';
import type { ServerLimits } from './schemas.js';

const part = z.object({ type: z.string() }).loose();

export function responsesSchema(l: ServerLimits) {
  return z.object({
    model: z.string().max(256).nullish(),
    input: z.union([z.string(), z.array(z.record(z.string(), z.unknown())).max(l.maxMessages)]),
    instructions: z.string().nullish(),
    max_output_tokens: z.number().int().min(1).nullish(),
    temperature: z.number().finite().min(0).max(2).nullish(),
    top_p: z.number().finite().gt(0).max(1).nullish(),
    stream: z.boolean().nullish(),
    // Accepted: nothing is ever stored whatever it says (the response reports store: false).
    store: z.boolean().nullish(),
    tools: z.array(z.record(z.string(), z.unknown())).nullish(),
    tool_choice: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    text: z.object({ format: part.nullish(), verbosity: z.string().nullish() }).loose().nullish(),
    reasoning: z.object({ effort: z.string().nullish(), summary: z.string().nullish() }).loose().nullish(),
    metadata: z.record(z.string(), z.string()).nullish(),
    user: z.string().nullish(),
    // Extensions shared with the chat route (vLLM style).
    seed: z.number().int().nullish(),
    top_k: z.number().int().min(-1).nullish(),
    min_p: z.number().finite().min(0).max(1).nullish(),
    stop: z.union([z.string(), z.array(z.string())]).nullish(),
    priority: z.number().int().nullish(),
    ignore_eos: z.boolean().nullish(),
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
    // Accepted without effect (named in x-tokenmill-ignored-fields; see responsesIgnoredFields).
    include: z.array(z.string()).nullish(),
    service_tier: z.string().nullish(),
    prompt_cache_key: z.string().nullish(),
    prompt_cache_retention: z.string().nullish(),
    safety_identifier: z.string().nullish(),
    stream_options: z.record(z.string(), z.unknown()).nullish(),
    // Stored state, hosted features and options only in their "off" form (checked below).
    previous_response_id: z.string().nullish(),
    conversation: z.unknown().optional(),
    background: z.boolean().nullish(),
    prompt: z.unknown().optional(),
    top_logprobs: z.number().int().nullish(),
    truncation: z.string().nullish(),
  });
}

export type ResponsesBody = z.infer<ReturnType<typeof responsesSchema>>;

function stateful(param: string, what: string): TokenmillError {
  return new TokenmillError(
    'unsupported_feature',
    `${what} needs stored responses; tokenmill's Responses API is stateless (nothing is stored). Send the whole conversation in ` +
      "'input' instead.",
    { param },
  );
}

function unsupported(param: string, what: string): TokenmillError {
  return new TokenmillError('unsupported_feature', `${what} is not supported by tokenmill's Responses API.`, { param });
}

function bad(param: string, message: string): TokenmillError {
  return new TokenmillError('invalid_request', message, { param });
}

/** 400 for what needs stored state or is not served. */
export function rejectUnsupportedResponses(b: ResponsesBody): void {
  if (b.previous_response_id) throw stateful('previous_response_id', 'previous_response_id');
  if (b.conversation !== undefined && b.conversation !== null) throw stateful('conversation', 'conversation');
  if (b.background === true) throw stateful('background', 'background: true');
  if (b.prompt !== undefined && b.prompt !== null) throw stateful('prompt', 'A stored prompt template');
  if (b.top_logprobs !== undefined && b.top_logprobs !== null && b.top_logprobs > 0) throw unsupported('top_logprobs', 'top_logprobs');
  if (b.truncation !== undefined && b.truncation !== null && b.truncation !== 'disabled')
    throw unsupported('truncation', `truncation '${b.truncation}'`);
}

/**
 * Fields accepted without effect, for x-tokenmill-ignored-fields: store (nothing is stored),
 * reasoning summaries and effort levels (the template decides how much to think; only "none" acts),
 * text.verbosity, include (no encrypted reasoning or extra outputs; logprobs are refused), service
 * tiers, prompt-cache keys, safety identifiers, stream options.
 */
export function responsesIgnoredFields(b: ResponsesBody): string[] {
  const out: string[] = [];
  if (b.store === true) out.push('store');
  if (b.reasoning?.effort !== undefined && b.reasoning.effort !== null && b.reasoning.effort !== 'none') out.push('reasoning.effort');
  if (b.reasoning?.summary !== undefined && b.reasoning.summary !== null) out.push('reasoning.summary');
  if (b.text?.verbosity !== undefined && b.text.verbosity !== null) out.push('text.verbosity');
  if (b.include && b.include.length > 0) {
    if (b.include.includes('message.output_text.logprobs'))
      throw unsupported('include', "include 'message.output_text.logprobs' (logprobs)");
    out.push('include');
  }
  if (typeof b.service_tier === 'string' && b.service_tier !== 'auto' && b.service_tier !== 'default') out.push('service_tier');
  for (const k of ['prompt_cache_key', 'prompt_cache_retention', 'safety_identifier', 'stream_options'] as const)
    if (b[k] !== undefined && b[k] !== null) out.push(k);
  return out;
}

interface ChatMessageOut {
  role: string;
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** Text of a content list; parts other than text are refused naming their type. */
function textOf(content: unknown, param: string, textTypes: readonly string[]): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw bad(param, `'${param}' must be a string or a list of content parts.`);
  const texts: string[] = [];
  content.forEach((p: unknown, j) => {
    const t = (p as { type?: unknown } | null)?.type;
    if (typeof t !== 'string') throw bad(`${param}.${j}`, `Content part ${j} has no 'type'.`);
    if (!textTypes.includes(t)) throw unsupported(`${param}.${j}`, `Content parts of type '${t}' (text only)`);
    const text = t === 'refusal' ? (p as { refusal?: unknown }).refusal : (p as { text?: unknown }).text;
    if (typeof text !== 'string') throw bad(`${param}.${j}`, `Content part ${j} of type '${t}' has no text.`);
    texts.push(text);
  });
  return texts.join('\n');
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Input items -> chat messages; messageInput[i] is the input index message i came from (for error params). */
export function inputMessages(b: ResponsesBody): { messages: ChatMessageOut[]; messageInput: number[] } {
  const messages: ChatMessageOut[] = [];
  const messageInput: number[] = [];
  const push = (m: ChatMessageOut, from: number): void => {
    messages.push(m);
    messageInput.push(from);
  };
  if (b.instructions) push({ role: 'system', content: b.instructions }, -1);
  if (typeof b.input === 'string') {
    push({ role: 'user', content: b.input }, 0);
    return { messages, messageInput };
  }
  if (b.input.length === 0) throw bad('input', "'input' is an empty list.");
  b.input.forEach((item, i) => {
    const p = `input.${i}`;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const role = item.role;
      if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer')
        throw bad(`${p}.role`, `Input item ${i}: role must be user, assistant, system or developer.`);
      const textTypes = role === 'assistant' ? ['output_text', 'input_text', 'text', 'refusal'] : ['input_text', 'text'];
      push({ role: role === 'developer' ? 'system' : role, content: textOf(item.content, `${p}.content`, textTypes) }, i);
    } else if (type === 'function_call') {
      if (!str(item.call_id) || !str(item.name) || typeof item.arguments !== 'string')
        throw bad(p, `Input item ${i} (function_call) needs call_id, name and arguments (a string).`);
      const call = { id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } };
      const prev = messages[messages.length - 1];
      // Calls right after an assistant message (or after other calls) belong to that assistant turn.
      if (prev !== undefined && prev.role === 'assistant') (prev.tool_calls ??= []).push(call);
      else push({ role: 'assistant', content: null, tool_calls: [call] }, i);
    } else if (type === 'function_call_output') {
      if (!str(item.call_id)) throw bad(`${p}.call_id`, `Input item ${i} (function_call_output) needs a call_id.`);
      push(
        { role: 'tool', tool_call_id: item.call_id, content: textOf(item.output, `${p}.output`, ['input_text', 'output_text', 'text']) },
        i,
      );
    } else if (type === 'reasoning') {
      // A previous turn's reasoning: chat templates drop past reasoning, and so does tokenmill.
    } else if (type === 'item_reference') {
      throw stateful(p, 'An item_reference input item');
    } else {
      throw unsupported(`${p}.type`, `Input items of type '${String(type)}'`);
    }
  });
  return { messages, messageInput };
}

/** Responses function tools -> chat tools; any other tool type is refused. */
function chatTools(tools: ResponsesBody['tools']): Record<string, unknown>[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  return tools.map((t, i) => {
    if (t.type !== 'function') throw unsupported(`tools.${i}.type`, `Tools of type '${String(t.type)}' (function tools only)`);
    if (!str(t.name)) throw bad(`tools.${i}.name`, `Tool ${i} has no name.`);
    const fn: Record<string, unknown> = { name: t.name };
    if (t.description !== undefined && t.description !== null) fn.description = t.description;
    if (t.parameters !== undefined && t.parameters !== null) fn.parameters = t.parameters;
    if (t.strict !== undefined && t.strict !== null) fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function chatToolChoice(tc: ResponsesBody['tool_choice']): unknown {
  if (tc === undefined || tc === null || typeof tc === 'string') return tc ?? undefined;
  if (tc.type === 'function' && str(tc.name)) return { type: 'function', function: { name: tc.name } };
  throw unsupported('tool_choice', `tool_choice of type '${String(tc.type)}'`);
}

function chatResponseFormat(format: Record<string, unknown> | null | undefined): unknown {
  if (format === undefined || format === null || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    const { type: _type, ...jsonSchema } = format;
    return { type: 'json_schema', json_schema: jsonSchema };
  }
  throw unsupported('text.format.type', `text.format of type '${String(format.type)}'`);
}

/** The chat request this Responses request is (validated again by the chat schema). */
export function toChatRequest(b: ResponsesBody): { chat: Record<string, unknown>; messageInput: number[] } {
  const { messages, messageInput } = inputMessages(b);
  const chat: Record<string, unknown> = { messages };
  const copy: [keyof ResponsesBody, string][] = [
    ['model', 'model'],
    ['max_output_tokens', 'max_completion_tokens'],
    ['temperature', 'temperature'],
    ['top_p', 'top_p'],
    ['parallel_tool_calls', 'parallel_tool_calls'],
    ['user', 'user'],
    ['seed', 'seed'],
    ['top_k', 'top_k'],
    ['min_p', 'min_p'],
    ['stop', 'stop'],
    ['priority', 'priority'],
    ['ignore_eos', 'ignore_eos'],
  ];
  for (const [from, to] of copy) if (b[from] !== undefined && b[from] !== null) chat[to] = b[from];
  const tools = chatTools(b.tools);
  if (tools !== undefined) chat.tools = tools;
  const choice = chatToolChoice(b.tool_choice);
  if (choice !== undefined) chat.tool_choice = choice;
  const rf = chatResponseFormat(b.text?.format);
  if (rf !== undefined) chat.response_format = rf;
  // reasoning.effort "none" turns a thinking template's reasoning off (Qwen3: enable_thinking).
  const kwargs = { ...(b.reasoning?.effort === 'none' ? { enable_thinking: false } : {}), ...b.chat_template_kwargs };
  if (Object.keys(kwargs).length > 0) chat.chat_template_kwargs = kwargs;
  return { chat, messageInput };
}

/** Chat parameter names -> the Responses names a client sent (for error messages from the chat path). */
export function responsesParam(param: string | null | undefined, messageInput: readonly number[]): string | undefined {
  if (param === undefined || param === null) return undefined;
  const m = /^messages(?:\.(\d+))?(.*)$/.exec(param);
  if (m) {
    const from = m[1] === undefined ? -1 : (messageInput[Number(m[1])] ?? -1);
    if (from === -1) return m[1] === undefined ? 'input' : 'instructions';
    return `input.${from}`;
  }
  if (param === 'max_completion_tokens' || param === 'max_tokens') return 'max_output_tokens';
  if (param.startsWith('response_format')) return `text.format${param.replace(/^response_format(\.json_schema)?/, '')}`;
  return param.replace(/^tools\.(\d+)\.function\./, 'tools.$1.').replace(/^tool_choice\.function\./, 'tool_choice.');
}
