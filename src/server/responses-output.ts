// Responses API output: parsed output deltas (content, reasoning, tool calls) -> output items
// (`reasoning`, `message`, `function_call`) and, when streaming, the exact event sequence the
// openai client accumulates (output_item.added, content_part.added, *.delta, *.done,
// output_item.done). One assembler serves both modes, so a streamed and a non-streamed response
// always agree. Also the Response object and its usage (with cost_usd). Pure; no I/O.

import { randomBytes } from 'node:crypto';
import type { UsageTotals } from './format.js';
import type { ResponsesBody } from './responses-request.js';

/** What the output parsers yield (content, reasoning text, a call's start, a call's argument text). */
export type ResponseDelta =
  | { readonly type: 'content'; readonly text: string }
  | { readonly type: 'reasoning'; readonly text: string }
  | { readonly type: 'tool_call'; readonly index: number; readonly id: string; readonly name: string }
  | { readonly type: 'tool_args'; readonly index: number; readonly text: string };

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

interface MessageItem {
  id: string;
  type: 'message';
  role: 'assistant';
  status: ItemStatus;
  content: { type: 'output_text'; text: string; annotations: never[]; logprobs: never[] }[];
}
interface ReasoningItem {
  id: string;
  type: 'reasoning';
  status: ItemStatus;
  summary: never[];
  content: { type: 'reasoning_text'; text: string }[];
}
interface CallItem {
  id: string;
  type: 'function_call';
  status: ItemStatus;
  call_id: string;
  name: string;
  arguments: string;
}
export type OutputItem = MessageItem | ReasoningItem | CallItem;

export type ResponseEvent = Record<string, unknown> & { type: string };

const itemId = (prefix: string): string => `${prefix}_${randomBytes(16).toString('hex')}`;

export class OutputAssembler {
  readonly items: OutputItem[] = [];
  private open: OutputItem | null = null;
  /** Call index (parser numbering) -> output index of its function_call item. */
  private readonly calls = new Map<number, number>();

  /** emit receives every stream event (without sequence_number) in order; a no-op when not streaming. */
  constructor(private readonly emit: (e: ResponseEvent) => void = () => {}) {}

  get text(): string {
    let s = '';
    for (const it of this.items) if (it.type === 'message') s += it.content[0]!.text;
    return s;
  }

  push(deltas: readonly ResponseDelta[]): void {
    for (const d of deltas) {
      if (d.type === 'content' || d.type === 'reasoning') {
        if (d.text.length === 0) continue;
        const item = this.ensureOpen(d.type === 'content' ? 'message' : 'reasoning');
        const part = item.type === 'message' ? item.content[0]! : (item as ReasoningItem).content[0]!;
        part.text += d.text;
        this.emit({
          type: d.type === 'content' ? 'response.output_text.delta' : 'response.reasoning_text.delta',
          ...this.where(item),
          content_index: 0,
          delta: d.text,
          ...(d.type === 'content' ? { logprobs: [] } : {}),
        });
      } else if (d.type === 'tool_call') {
        this.close('completed');
        const item: CallItem = {
          id: itemId('fc'),
          type: 'function_call',
          status: 'in_progress',
          call_id: d.id,
          name: d.name,
          arguments: '',
        };
        this.calls.set(d.index, this.items.length);
        this.add(item);
      } else {
        const at = this.calls.get(d.index);
        if (at === undefined || d.text.length === 0) continue;
        const item = this.items[at] as CallItem;
        item.arguments += d.text;
        this.emit({ type: 'response.function_call_arguments.delta', ...this.where(item), delta: d.text });
      }
    }
  }

  /** End of generation: close the open item; a response with no output at all gets an empty message. */
  finish(status: 'completed' | 'incomplete'): void {
    if (this.items.length === 0) this.ensureOpen('message');
    this.close(status);
  }

  private where(item: OutputItem): { item_id: string; output_index: number } {
    return { item_id: item.id, output_index: this.items.indexOf(item) };
  }

  private add(item: OutputItem): void {
    this.items.push(item);
    this.open = item;
    this.emit({ type: 'response.output_item.added', output_index: this.items.length - 1, item: structuredClone(item) });
  }

  private ensureOpen(kind: 'message' | 'reasoning'): OutputItem {
    if (this.open !== null && this.open.type === kind) return this.open;
    this.close('completed');
    if (kind === 'message') {
      const item: MessageItem = { id: itemId('msg'), type: 'message', role: 'assistant', status: 'in_progress', content: [] };
      this.add(item);
      item.content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
      this.emit({
        type: 'response.content_part.added',
        ...this.where(item),
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
      return item;
    }
    const item: ReasoningItem = { id: itemId('rs'), type: 'reasoning', status: 'in_progress', summary: [], content: [] };
    this.add(item);
    item.content.push({ type: 'reasoning_text', text: '' });
    this.emit({ type: 'response.content_part.added', ...this.where(item), content_index: 0, part: { type: 'reasoning_text', text: '' } });
    return item;
  }

  private close(status: ItemStatus): void {
    const item = this.open;
    if (item === null) return;
    this.open = null;
    const w = this.where(item);
    if (item.type === 'message') {
      const part = item.content[0]!;
      this.emit({ type: 'response.output_text.done', ...w, content_index: 0, text: part.text, logprobs: [] });
      this.emit({ type: 'response.content_part.done', ...w, content_index: 0, part: structuredClone(part) });
    } else if (item.type === 'reasoning') {
      const part = item.content[0]!;
      this.emit({ type: 'response.reasoning_text.done', ...w, content_index: 0, text: part.text });
      this.emit({ type: 'response.content_part.done', ...w, content_index: 0, part: structuredClone(part) });
    } else {
      this.emit({ type: 'response.function_call_arguments.done', ...w, name: item.name, arguments: item.arguments });
    }
    item.status = status;
    this.emit({ type: 'response.output_item.done', output_index: w.output_index, item: structuredClone(item) });
  }
}

export interface ResponseUsageTotals extends UsageTotals {
  numReasoningTokens: number;
}

export function responsesUsage(u: ResponseUsageTotals) {
  return {
    input_tokens: u.numPromptTokens,
    input_tokens_details: { cached_tokens: u.numCachedPromptTokens },
    output_tokens: u.numGeneratedTokens,
    output_tokens_details: { reasoning_tokens: u.numReasoningTokens },
    total_tokens: u.numPromptTokens + u.numGeneratedTokens,
    cost_usd: u.costUsd,
  };
}

export interface ResponseHeadInfo {
  readonly id: string;
  readonly createdAt: number;
  readonly model: string;
}

/** The Response object in any state; echoes the request's settings as OpenAI does. */
export function responseObject(
  head: ResponseHeadInfo,
  b: ResponsesBody,
  s: {
    status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
    output: readonly OutputItem[];
    usage: ResponseUsageTotals | null;
    error?: { code: string; message: string } | null;
  },
) {
  return {
    id: head.id,
    object: 'response',
    created_at: head.createdAt,
    status: s.status,
    background: false,
    error: s.error ?? null,
    incomplete_details: s.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: head.model,
    output: structuredClone(s.output),
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: null },
    store: false,
    temperature: b.temperature ?? 1,
    text: { format: b.text?.format ?? { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    usage: s.usage === null ? null : responsesUsage(s.usage),
    user: b.user ?? null,
    metadata: b.metadata ?? {},
  };
}
