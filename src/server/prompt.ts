// Prompt -> token ids. Completions: a string (encoded with the model's special tokens) or token
// ids. Chat: messages flattened to text, rendered with the model's own chat template (through the
// ModelFrontend, which enforces the template time limit) and encoded without extra specials.

import { TokenmillError } from '../util/errors.js';
import type { ChatMessage, ModelFrontend } from './frontend.js';
import type { ChatBody, CompletionBody } from './schemas.js';

export async function completionPromptIds(body: CompletionBody, fe: ModelFrontend): Promise<number[]> {
  const p = body.prompt;
  if (typeof p !== 'string' && p.length > 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) {
    throw new TokenmillError('unsupported_feature', `Batched prompts (a list of ${p.length} prompts) are not supported yet; send one request per prompt.`, { param: 'prompt' });
  }
  let ids: number[];
  if (typeof p === 'string') ids = await fe.encode(p, { addSpecialTokens: true });
  else if (p.length > 0 && typeof p[0] === 'string') ids = await fe.encode(p[0] as string, { addSpecialTokens: true });
  else if (p.length > 0 && Array.isArray(p[0])) ids = [...(p[0] as number[])];
  else ids = [...(p as number[])];
  checkIds(ids, fe.vocabSize, 'prompt');
  return ids;
}

export function checkIds(ids: readonly number[], vocabSize: number, param: string): void {
  if (ids.length === 0) throw new TokenmillError('invalid_request', 'The prompt is empty (0 tokens).', { param });
  for (const id of ids) {
    if (id >= vocabSize) throw new TokenmillError('invalid_request', `Token id ${id} is outside the vocabulary [0, ${vocabSize}).`, { param });
  }
}

/** OpenAI message bodies -> plain-text ChatMessages for the template. */
export function flattenMessages(messages: ChatBody['messages']): ChatMessage[] {
  return messages.map((m, i) => {
    if (m.tool_calls && m.tool_calls.length > 0) {
      throw new TokenmillError('unsupported_feature', 'Tool calls in messages are not supported by tokenmill yet.', { param: `messages.${i}.tool_calls` });
    }
    if (m.role === 'tool') {
      throw new TokenmillError('unsupported_feature', 'Tool messages are not supported by tokenmill yet.', { param: `messages.${i}.role` });
    }
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      const texts: string[] = [];
      for (const part of m.content) {
        if (part.type !== 'text' || typeof part.text !== 'string') {
          throw new TokenmillError('unsupported_feature', `Content parts of type '${part.type}' are not supported (text only).`, { param: `messages.${i}.content` });
        }
        texts.push(part.text);
      }
      content = texts.join('\n');
    }
    const role = m.role === 'developer' ? 'system' : m.role;
    return m.name ? { role, content, name: m.name } : { role, content };
  });
}

export async function chatPromptIds(body: ChatBody, fe: ModelFrontend): Promise<number[]> {
  const text = await fe.renderChat(flattenMessages(body.messages), { addGenerationPrompt: body.add_generation_prompt ?? true });
  const ids = await fe.encode(text, { addSpecialTokens: false });
  checkIds(ids, fe.vocabSize, 'messages');
  return ids;
}
