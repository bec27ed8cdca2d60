// The tool side of a chat request: `tools`, `tool_choice`, `parallel_tool_calls` and the
// messages that carry calls (assistant `tool_calls`) and their results (`role: "tool"`), validated
// into what the chat template and the parsers need. Every mistake is a 400 naming its param.
// Shared by /v1/chat/completions and /v1/responses.

import { z } from 'zod';
import { TokenmillError } from '../../util/errors.js';

const NAME_RE = /^[a-zA-Z0-9_.-]{1,64}$/;

export const functionToolSchema = z
  .object({
    type: z.literal('function'),
    function: z
      .object({
        name: z.string(),
        description: z.string().max(8192).nullish(),
        parameters: z.record(z.string(), z.unknown()).nullish(),
        strict: z.boolean().nullish(),
      })
      .loose(),
  })
  .loose();

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }).loose() }).loose(),
]);

export const toolCallSchema = z
  .object({
    id: z.string().min(1).max(256),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string(), arguments: z.string() }).loose(),
  })
  .loose();

export type FunctionToolBody = z.infer<typeof functionToolSchema>;
export type ToolChoiceBody = z.infer<typeof toolChoiceSchema>;
export type ToolCallBody = z.infer<typeof toolCallSchema>;

export interface FunctionTool {
  readonly name: string;
  readonly description: string | null;
  /** JSON schema of the arguments ({} when the tool takes none). */
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** none: no tools shown, no parsing; auto: the model decides; required: >= 1 call; named: that function. */
export type ToolChoice = { readonly kind: 'none' | 'auto' | 'required' } | { readonly kind: 'function'; readonly name: string };

export interface ToolRequest {
  readonly tools: readonly FunctionTool[];
  readonly choice: ToolChoice;
  readonly parallel: boolean;
  /** The tools as the chat template expects them (OpenAI's objects). */
  readonly templateTools: readonly Record<string, unknown>[];
}

function bad(message: string, param: string): TokenmillError {
  return new TokenmillError('invalid_request', message, { param });
}

/** Validate tools / tool_choice / parallel_tool_calls; null when the request uses no tools. */
export function parseToolRequest(body: {
  tools?: readonly FunctionToolBody[] | null;
  tool_choice?: ToolChoiceBody | null;
  parallel_tool_calls?: boolean | null;
}): ToolRequest | null {
  const raw = body.tools ?? [];
  const tc = body.tool_choice ?? null;
  if (raw.length === 0) {
    if (tc !== null && tc !== 'none' && tc !== 'auto')
      throw bad(
        `tool_choice ${typeof tc === 'string' ? `'${tc}'` : `{function: '${tc.function.name}'}`} needs a non-empty 'tools' list.`,
        'tool_choice',
      );
    return null;
  }
  const names = new Set<string>();
  const tools = raw.map((t, i): FunctionTool => {
    const name = t.function.name;
    if (!NAME_RE.test(name))
      throw bad(`Tool name '${name}' must be 1-64 characters of a-z, A-Z, 0-9, _, . or -.`, `tools.${i}.function.name`);
    if (names.has(name)) throw bad(`Tool name '${name}' appears twice.`, `tools.${i}.function.name`);
    names.add(name);
    const parameters = t.function.parameters ?? { type: 'object', properties: {} };
    return { name, description: t.function.description ?? null, parameters };
  });
  let choice: ToolChoice;
  if (tc === null) choice = { kind: 'auto' };
  else if (typeof tc === 'string') choice = { kind: tc };
  else {
    if (!names.has(tc.function.name)) {
      throw bad(
        `tool_choice names the function '${tc.function.name}', which is not in 'tools' (${[...names].join(', ')}).`,
        'tool_choice.function.name',
      );
    }
    choice = { kind: 'function', name: tc.function.name };
  }
  const templateTools = tools.map((t) => ({
    type: 'function',
    function: { name: t.name, ...(t.description !== null ? { description: t.description } : {}), parameters: t.parameters },
  }));
  return { tools, choice, parallel: body.parallel_tool_calls ?? true, templateTools };
}

export interface ToolMessageFields {
  readonly role: string;
  readonly tool_calls?: readonly ToolCallBody[] | null;
  readonly tool_call_id?: string | null;
}

/**
 * Check the calls and results in a conversation: assistant calls are well formed (arguments are
 * JSON objects, ids unique); every tool message answers a call made earlier, by id. Returns the
 * parsed arguments of each call (the templates render them as objects).
 */
export function checkToolMessages(messages: readonly ToolMessageFields[]): Map<string, unknown> {
  const calls = new Map<string, unknown>();
  messages.forEach((m, i) => {
    if (m.tool_calls && m.tool_calls.length > 0) {
      if (m.role !== 'assistant')
        throw bad(`Only assistant messages may carry tool_calls (message ${i} is '${m.role}').`, `messages.${i}.tool_calls`);
      m.tool_calls.forEach((c, j) => {
        const param = `messages.${i}.tool_calls.${j}`;
        if (calls.has(c.id)) throw bad(`Tool call id '${c.id}' appears twice in the conversation.`, `${param}.id`);
        if (!NAME_RE.test(c.function.name))
          throw bad(`Tool call name '${c.function.name}' is not a valid function name.`, `${param}.function.name`);
        let args: unknown;
        try {
          args = c.function.arguments.trim() === '' ? {} : JSON.parse(c.function.arguments);
        } catch {
          throw bad(`The arguments of tool call '${c.id}' are not valid JSON.`, `${param}.function.arguments`);
        }
        if (typeof args !== 'object' || args === null || Array.isArray(args))
          throw bad(`The arguments of tool call '${c.id}' must be a JSON object.`, `${param}.function.arguments`);
        calls.set(c.id, args);
      });
    }
    if (m.role === 'tool') {
      const id = m.tool_call_id;
      if (id === undefined || id === null || id === '') throw bad(`Tool message ${i} has no tool_call_id.`, `messages.${i}.tool_call_id`);
      if (!calls.has(id))
        throw bad(
          `Tool message ${i} answers tool_call_id '${id}', but no earlier assistant message made that call.`,
          `messages.${i}.tool_call_id`,
        );
    }
  });
  return calls;
}
