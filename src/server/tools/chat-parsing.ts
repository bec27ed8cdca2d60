// Per-request output parsing for chat-style routes: which parsers run (the server's resolved
// tool-call and reasoning parsers, the request's tools and tool_choice), the special marker
// tokens the detokenizer must keep for them, the grammar that enforces tool_choice, and the
// factory of per-choice ChatOutputParsers.
// Shared by /v1/chat/completions and /v1/responses.

import { TokenmillError } from '../../util/errors.js';
import type { ModelFrontend } from '../frontend.js';
import {
  ChatOutputParser,
  PARSER_MARKERS,
  resolveReasoningParser,
  resolveToolCallParser,
  type ReasoningParserName,
  type ToolCallParserName,
} from './parser-select.js';
import { toolConstraint } from './tool-constraint.js';
import type { ToolRequest } from './tool-request.js';
import type { Constraint, SamplingParams } from '../../engine/sampling-params.js';

/** The server's parsers, resolved once from the flags and the model's chat template. */
export interface OutputParserConfig {
  readonly toolCallParser: ToolCallParserName | null;
  readonly reasoningParser: ReasoningParserName | null;
}

export function resolveOutputParsers(
  flags: { toolCallParser?: string; reasoningParser?: string },
  template: string | null | undefined,
): OutputParserConfig {
  return {
    toolCallParser: resolveToolCallParser(flags.toolCallParser, template),
    reasoningParser: resolveReasoningParser(flags.reasoningParser, template),
  };
}

export interface ChatParsing {
  /** Per-choice parser factory; null when the output is plain content. */
  readonly create: (() => ChatOutputParser) | null;
  readonly reasoning: boolean;
  /** Marker tokens (single special tokens) the detokenizer must not drop. */
  readonly keepSpecialTokenIds: readonly number[];
  /** The tool-call parser in use for this request (null: tools are not parsed). */
  readonly toolParser: ToolCallParserName | null;
  /** The grammar enforcing tool_choice (structural tags in the parser's format); null: none. */
  readonly constraint: Constraint | null;
}

/** Decide the parsing of one request; throws unsupported_feature for tools on a model without a tool format. */
export function chatParsing(cfg: OutputParserConfig, tools: ToolRequest | null, fe: ModelFrontend, promptText: string): ChatParsing {
  const wantTools = tools !== null && tools.choice.kind !== 'none';
  if (wantTools && cfg.toolCallParser === null) {
    throw new TokenmillError(
      'unsupported_feature',
      "This model's chat template has no tool-call format tokenmill recognises; start the server with --tool-call-parser " +
        '(hermes, llama3_json or mistral), or send tool_choice: "none".',
      { param: 'tools' },
    );
  }
  const toolParser = wantTools ? cfg.toolCallParser : null;
  const reasoningParser = cfg.reasoningParser;
  const lookup = fe.singleTokenId ? (t: string) => fe.singleTokenId!(t) : null;
  const keep: number[] = [];
  for (const name of [toolParser, reasoningParser]) {
    if (name === null || lookup === null) continue;
    for (const m of PARSER_MARKERS[name]) {
      const id = lookup(m);
      if (id !== null) keep.push(id);
    }
  }
  if (toolParser === null && reasoningParser === null)
    return { create: null, reasoning: false, keepSpecialTokenIds: [], toolParser: null, constraint: null };
  const maxCalls = tools !== null && !tools.parallel ? 1 : Number.POSITIVE_INFINITY;
  const constraint = toolParser !== null && tools !== null ? toolConstraint(tools, toolParser) : null;
  return {
    create: () =>
      new ChatOutputParser({
        toolParser,
        reasoningParser,
        prompt: promptText,
        singleTokenId: lookup,
        maxCalls,
        toolMarkersById: constraint === null,
      }),
    reasoning: reasoningParser !== null,
    keepSpecialTokenIds: keep,
    toolParser,
    constraint,
  };
}

/** Sampling params with the parsing's marker tokens and tool grammar (the tool grammar wins). */
export function withParsing(p: SamplingParams, parsing: ChatParsing): SamplingParams {
  if (parsing.keepSpecialTokenIds.length === 0 && parsing.constraint === null) return p;
  return {
    ...p,
    ...(parsing.keepSpecialTokenIds.length > 0 ? { keepSpecialTokenIds: parsing.keepSpecialTokenIds } : {}),
    ...(parsing.constraint !== null ? { constraint: parsing.constraint } : {}),
  };
}
