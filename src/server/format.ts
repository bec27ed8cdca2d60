// OpenAI response shapes: chat.completion / text_completion bodies and stream chunks, usage (with
// cost_usd) and both logprobs layouts. Pure functions over ChoiceState; no I/O.

import type { TokenLogprob } from '../engine/engine-api.js';
import type { FinishReason } from '../engine/sampling-params.js';
import type { RouteKind } from './sampling.js';
import type { ChatOutputParser } from './tools/parser-select.js';
import type { ParsedOutput } from './tools/output-parser.js';

export interface ResolvedLogprob {
  readonly token: string;
  /** The token's real bytes (not the UTF-8 of `token`, which shows U+FFFD for a partial character). */
  readonly bytes: readonly number[];
  readonly logprob: number;
  readonly top: readonly { token: string; bytes: readonly number[]; logprob: number }[];
}

export interface ChoiceState {
  readonly index: number;
  text: string;
  numTokens: number;
  logprobs: ResolvedLogprob[];
  finishReason: FinishReason | null;
  /** Has the first chunk (with role) of this choice been streamed? */
  started: boolean;
  /** Chat with tools or reasoning: this choice's output parser and what it parsed so far. */
  parser?: ChatOutputParser | null;
  parsed?: ParsedOutput;
}

export interface UsageTotals {
  numPromptTokens: number;
  numCachedPromptTokens: number;
  numGeneratedTokens: number;
  costUsd: number;
  /** Tokens inside reasoning (think) blocks; reported only when a reasoning parser runs. */
  numReasoningTokens?: number;
}

export interface ResponseHead {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  /** fp_ + a short hash of the environment fingerprint (metrics/fingerprint.ts); null when none was computed. */
  readonly systemFingerprint: string | null;
}

export function usageBody(u: UsageTotals) {
  return {
    prompt_tokens: u.numPromptTokens,
    completion_tokens: u.numGeneratedTokens,
    total_tokens: u.numPromptTokens + u.numGeneratedTokens,
    prompt_tokens_details: { cached_tokens: u.numCachedPromptTokens },
    ...(u.numReasoningTokens !== undefined ? { completion_tokens_details: { reasoning_tokens: u.numReasoningTokens } } : {}),
    cost_usd: u.costUsd,
  };
}

/** Only 'stop' and 'length' reach clients; abort/error become errors before this. */
export function openAiFinish(r: FinishReason | null): 'stop' | 'length' | null {
  return r === 'stop' || r === 'length' ? r : null;
}

/** A chat choice's finish_reason: a stop after tool calls is 'tool_calls' (OpenAI's value). */
export function chatFinish(c: ChoiceState): 'stop' | 'length' | 'tool_calls' | null {
  const r = openAiFinish(c.finishReason);
  return r === 'stop' && c.parsed !== undefined && c.parsed.toolCalls.length > 0 ? 'tool_calls' : r;
}

/** The assistant message of a chat choice (parsed content, reasoning and tool calls when a parser ran). */
export function chatMessage(c: ChoiceState, reasoning: boolean): Record<string, unknown> {
  const p = c.parsed;
  if (p === undefined) return { role: 'assistant', content: c.text };
  const calls = p.toolCalls.filter((t) => t !== undefined);
  const msg: Record<string, unknown> = { role: 'assistant', content: calls.length > 0 && p.content === '' ? null : p.content };
  if (reasoning) msg.reasoning_content = p.reasoning === '' ? null : p.reasoning;
  if (calls.length > 0)
    msg.tool_calls = calls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
  return msg;
}

export function chatLogprobs(lps: readonly ResolvedLogprob[]) {
  return {
    content: lps.map((lp) => ({
      token: lp.token,
      logprob: lp.logprob,
      bytes: [...lp.bytes],
      top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: [...t.bytes] })),
    })),
  };
}

/** Completions layout; textOffset is where this slice starts in the choice's text (chars). */
export function completionLogprobs(lps: readonly ResolvedLogprob[], textOffset: number) {
  const offsets: number[] = [];
  let at = textOffset;
  for (const lp of lps) {
    offsets.push(at);
    at += lp.token.length;
  }
  return {
    tokens: lps.map((lp) => lp.token),
    token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries(lp.top.map((t) => [t.token, t.logprob]))),
    text_offset: offsets,
  };
}

export function fullResponse(
  kind: RouteKind,
  head: ResponseHead,
  choices: readonly ChoiceState[],
  usage: UsageTotals,
  wantLogprobs: boolean,
  reasoning = false,
) {
  if (kind === 'chat') {
    return {
      id: head.id,
      object: 'chat.completion',
      created: head.created,
      model: head.model,
      system_fingerprint: head.systemFingerprint,
      choices: choices.map((c) => ({
        index: c.index,
        message: chatMessage(c, reasoning),
        logprobs: wantLogprobs ? chatLogprobs(c.logprobs) : null,
        finish_reason: chatFinish(c),
      })),
      usage: usageBody(usage),
    };
  }
  return {
    id: head.id,
    object: 'text_completion',
    created: head.created,
    model: head.model,
    system_fingerprint: head.systemFingerprint,
    choices: choices.map((c) => ({
      index: c.index,
      text: c.text,
      logprobs: wantLogprobs ? completionLogprobs(c.logprobs, 0) : null,
      finish_reason: openAiFinish(c.finishReason),
    })),
    usage: usageBody(usage),
  };
}

/** One stream chunk for one choice's increment. */
export function deltaChunk(
  kind: RouteKind,
  head: ResponseHead,
  d: { index: number; first: boolean; text: string; logprobs: ResolvedLogprob[] | null; textOffset: number; finish: FinishReason | null },
  includeUsage: boolean,
) {
  const finish_reason = openAiFinish(d.finish);
  let choice: Record<string, unknown>;
  if (kind === 'chat') {
    const delta: Record<string, unknown> = d.first
      ? { role: 'assistant', content: d.text }
      : d.text.length > 0 || finish_reason === null
        ? { content: d.text }
        : {};
    choice = { index: d.index, delta, logprobs: d.logprobs ? chatLogprobs(d.logprobs) : null, finish_reason };
  } else {
    choice = { index: d.index, text: d.text, logprobs: d.logprobs ? completionLogprobs(d.logprobs, d.textOffset) : null, finish_reason };
  }
  const chunk: Record<string, unknown> = {
    id: head.id,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: head.created,
    model: head.model,
    system_fingerprint: head.systemFingerprint,
    choices: [choice],
  };
  if (includeUsage) chunk.usage = null;
  return chunk;
}

export function usageChunk(kind: RouteKind, head: ResponseHead, usage: UsageTotals) {
  return {
    id: head.id,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: head.created,
    model: head.model,
    system_fingerprint: head.systemFingerprint,
    choices: [],
    usage: usageBody(usage),
  };
}

export type { TokenLogprob };
