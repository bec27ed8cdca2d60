// Which tool-call and reasoning parsers a model gets: named by --tool-call-parser /
// --reasoning-parser, or 'auto' (recognised from the chat template's text), and the per-choice
// ChatOutputParser that chains them: reasoning split first, then tool calls in the content.

import { TokenmillError } from '../../util/errors.js';
import { promptOpensThink, ThinkParser } from '../reasoning/think-parser.js';
import { HermesToolParser } from './hermes-parser.js';
import { Llama3JsonToolParser } from './llama3-json-parser.js';
import type { SingleTokenLookup } from './markers.js';
import { MistralToolParser } from './mistral-parser.js';
import type { OutputDelta, StreamParser, ToolParserOptions } from './output-parser.js';

export const TOOL_CALL_PARSERS = ['hermes', 'llama3_json', 'mistral'] as const;
export type ToolCallParserName = (typeof TOOL_CALL_PARSERS)[number];
export const REASONING_PARSERS = ['qwen3'] as const;
export type ReasoningParserName = (typeof REASONING_PARSERS)[number];

/** The special tokens whose text a parser must see (the detokenizer otherwise drops them). */
export const PARSER_MARKERS: Readonly<Record<ToolCallParserName | ReasoningParserName, readonly string[]>> = {
  hermes: ['<tool_call>', '</tool_call>'],
  llama3_json: ['<|python_tag|>'],
  mistral: ['[TOOL_CALLS]', '[ARGS]'],
  qwen3: ['<think>', '</think>'],
};

/** The tool-call format a chat template writes, or null when it has none we know. */
export function detectToolCallParser(template: string | null | undefined): ToolCallParserName | null {
  if (!template) return null;
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('[TOOL_CALLS]')) return 'mistral';
  if (template.includes('<|python_tag|>') || (template.includes('ipython') && template.includes('"parameters"'))) return 'llama3_json';
  return null;
}

export function detectReasoningParser(template: string | null | undefined): ReasoningParserName | null {
  if (!template) return null;
  return template.includes('<think>') || template.includes('</think>') ? 'qwen3' : null;
}

/** Resolve a flag value ('auto', 'none' or a name) against the template. */
export function resolveToolCallParser(flag: string | undefined, template: string | null | undefined): ToolCallParserName | null {
  if (flag === undefined || flag === 'auto') return detectToolCallParser(template);
  if (flag === 'none') return null;
  if ((TOOL_CALL_PARSERS as readonly string[]).includes(flag)) return flag as ToolCallParserName;
  throw new TokenmillError('invalid_argument', `--tool-call-parser ${flag}: expected auto, none or one of ${TOOL_CALL_PARSERS.join(', ')}`);
}

export function resolveReasoningParser(flag: string | undefined, template: string | null | undefined): ReasoningParserName | null {
  if (flag === undefined || flag === 'auto') return detectReasoningParser(template);
  if (flag === 'none') return null;
  if ((REASONING_PARSERS as readonly string[]).includes(flag)) return flag as ReasoningParserName;
  throw new TokenmillError('invalid_argument', `--reasoning-parser ${flag}: expected auto, none or one of ${REASONING_PARSERS.join(', ')}`);
}

export function createToolParser(name: ToolCallParserName, opts: ToolParserOptions): StreamParser {
  switch (name) {
    case 'hermes':
      return new HermesToolParser(opts);
    case 'llama3_json':
      return new Llama3JsonToolParser(opts);
    case 'mistral':
      return new MistralToolParser(opts);
  }
}

export interface ChatOutputOptions extends ToolParserOptions {
  readonly toolParser: ToolCallParserName | null;
  readonly reasoningParser: ReasoningParserName | null;
  /** The rendered prompt (decides whether the output starts inside a think block). */
  readonly prompt?: string;
  readonly singleTokenId?: SingleTokenLookup | null;
  /**
   * Match tool-call markers on token ids (default true). Off when a grammar enforces the calls: the
   * grammar admits any tokenization of the marker text, and it guarantees the structure anyway.
   */
  readonly toolMarkersById?: boolean;
}

/** One choice's output: reasoning split, then tool calls in what remains. */
export class ChatOutputParser implements StreamParser {
  private readonly think: ThinkParser | null;
  private readonly tools: StreamParser | null;

  constructor(opts: ChatOutputOptions) {
    this.think =
      opts.reasoningParser === null
        ? null
        : new ThinkParser({ singleTokenId: opts.singleTokenId ?? null, promptOpened: promptOpensThink(opts.prompt ?? '') });
    this.tools =
      opts.toolParser === null
        ? null
        : createToolParser(opts.toolParser, opts.toolMarkersById === false ? { ...opts, singleTokenId: null } : opts);
  }

  get numReasoningTokens(): number {
    return this.think?.numReasoningTokens ?? 0;
  }

  push(text: string, tokenIds: readonly number[]): OutputDelta[] {
    const first = this.think ? this.think.push(text, tokenIds) : [{ type: 'content' as const, text }];
    return this.route(first, tokenIds, false);
  }

  finish(): OutputDelta[] {
    return this.route(this.think ? this.think.finish() : [], [], true);
  }

  private route(deltas: readonly OutputDelta[], tokenIds: readonly number[], end: boolean): OutputDelta[] {
    if (this.tools === null) return deltas.filter((d) => d.type !== 'content' || d.text.length > 0);
    const out: OutputDelta[] = [];
    let idsGiven = false;
    for (const d of deltas) {
      if (d.type !== 'content') {
        out.push(d);
        continue;
      }
      out.push(...this.tools.push(d.text, idsGiven ? [] : tokenIds));
      idsGiven = true;
    }
    if (!idsGiven && tokenIds.length > 0) out.push(...this.tools.push('', tokenIds));
    if (end) out.push(...this.tools.finish());
    return out;
  }
}
