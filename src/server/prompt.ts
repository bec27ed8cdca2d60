// Prompt -> token ids. Completions: a string (encoded with the model's special tokens) or token
// ids. Chat: messages flattened to text (tool calls and results kept for the template), rendered
// with the model's own chat template and the request's tools and chat_template_kwargs (through the
// ModelFrontend, which enforces the template time limit) and encoded without extra specials.

import { TokenmillError } from '../util/errors.js';
import type { ChatMessage, ModelFrontend } from './frontend.js';
import type { ChatBody, CompletionBody } from './schemas.js';
import { checkToolMessages, type ToolRequest } from './tools/tool-request.js';

/** Token ids of each prompt: one list for a string or token ids, several for a list of prompts. */
export async function completionPromptIds(body: CompletionBody, fe: ModelFrontend): Promise<number[][]> {
  const p = body.prompt;
  let all: number[][];
  if (typeof p === 'string') all = [await fe.encode(p, { addSpecialTokens: true })];
  else if (p.length > 0 && typeof p[0] === 'string')
    all = await Promise.all((p as string[]).map((s) => fe.encode(s, { addSpecialTokens: true })));
  else if (p.length > 0 && Array.isArray(p[0])) all = (p as number[][]).map((ids) => [...ids]);
  else all = [[...(p as number[])]];
  return all;
}

/** The request field prompt `i` of `numPrompts` came from, as the engine's 400s name it. */
export function promptParam(field: string, i: number, numPrompts: number): string {
  return numPrompts > 1 ? `${field}.${i}` : field;
}

/** OpenAI message bodies -> ChatMessages for the template (text content, calls with parsed arguments). */
export function flattenMessages(messages: ChatBody['messages']): ChatMessage[] {
  const callArgs = checkToolMessages(messages);
  return messages.map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      const texts: string[] = [];
      for (const part of m.content) {
        if (part.type !== 'text' || typeof part.text !== 'string') {
          throw new TokenmillError('unsupported_feature', `Content parts of type '${part.type}' are not supported (text only).`, {
            param: `messages.${i}.content`,
          });
        }
        texts.push(part.text);
      }
      content = texts.join('\n');
    }
    const role = m.role === 'developer' ? 'system' : m.role;
    const out: { -readonly [K in keyof ChatMessage]: ChatMessage[K] } = { role, content };
    if (m.name) out.name = m.name;
    if (m.tool_calls && m.tool_calls.length > 0) {
      out.tool_calls = m.tool_calls.map((c) => ({
        id: c.id,
        type: 'function' as const,
        function: { name: c.function.name, arguments: callArgs.get(c.id) },
      }));
    }
    if (m.role === 'tool' && m.tool_call_id) out.tool_call_id = m.tool_call_id;
    if (m.role === 'assistant' && typeof m.reasoning_content === 'string') out.reasoning_content = m.reasoning_content;
    return out;
  });
}

export interface ChatPrompt {
  readonly ids: number[];
  /** The rendered prompt (the reasoning parser checks whether it opens a think block). */
  readonly text: string;
}

/** Render and encode a chat request; tools are shown to the model unless tool_choice is none. */
export async function chatPromptIds(body: ChatBody, fe: ModelFrontend, tools: ToolRequest | null): Promise<ChatPrompt> {
  const text = await fe.renderChat(flattenMessages(body.messages), {
    addGenerationPrompt: body.add_generation_prompt ?? true,
    ...(tools !== null && tools.choice.kind !== 'none' ? { tools: tools.templateTools } : {}),
    ...(body.chat_template_kwargs ? { extra: body.chat_template_kwargs } : {}),
  });
  const ids = await fe.encode(text, { addSpecialTokens: false });
  return { ids, text };
}
