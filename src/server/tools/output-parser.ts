// The streaming output-parser contract shared by the tool-call parsers and the reasoning splitter:
// text (and the token ids that produced it) in, typed deltas out. The same machine serves streamed
// and non-streamed responses (a non-streamed answer folds the deltas), so both always agree.
// CallTracker numbers calls per choice, issues their ids and drops calls past the parallel limit.

import { randomBytes } from 'node:crypto';

export type OutputDelta =
  | { readonly type: 'content'; readonly text: string }
  | { readonly type: 'reasoning'; readonly text: string }
  /** A new call: index (per choice, from 0), its id and the function name; arguments follow. */
  | { readonly type: 'tool_call'; readonly index: number; readonly id: string; readonly name: string }
  | { readonly type: 'tool_args'; readonly index: number; readonly text: string };

export interface StreamParser {
  /** Feed newly released text and the ids generated with it; returns the deltas it completes. */
  push(text: string, tokenIds: readonly number[]): OutputDelta[];
  /** End of generation: release whatever is held. */
  finish(): OutputDelta[];
}

/**
 * The push/finish skeleton the marker-driven parsers share: text accumulates in `buf`, run() consumes
 * what it can (everything when atEnd), flushRest() releases what the parser still holds at the end.
 */
export abstract class BufferedStreamParser implements StreamParser {
  protected buf = '';
  protected abstract readonly markers: { noteIds(ids: readonly number[]): void };

  push(text: string, tokenIds: readonly number[]): OutputDelta[] {
    this.markers.noteIds(tokenIds);
    this.noteTokens(tokenIds);
    this.buf += text;
    const out: OutputDelta[] = [];
    this.run(out, false);
    return out;
  }

  finish(): OutputDelta[] {
    const out: OutputDelta[] = [];
    this.run(out, true);
    this.flushRest(out);
    this.buf = '';
    return out;
  }

  /** Token-level accounting before the text is parsed (none by default). */
  protected noteTokens(_tokenIds: readonly number[]): void {}
  protected abstract run(out: OutputDelta[], atEnd: boolean): void;
  protected abstract flushRest(out: OutputDelta[]): void;
}

export interface ToolParserOptions {
  /** Token id of a text when it is exactly one token (markers are then matched on ids). */
  readonly singleTokenId?: ((text: string) => number | null) | null;
  /** Most calls kept per choice (parallel_tool_calls: false = 1). */
  readonly maxCalls?: number;
  /** Call id generator (default call_ + 24 hex chars). */
  readonly newCallId?: () => string;
}

export function defaultCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Per-choice call numbering and the parallel limit. */
export class CallTracker {
  private numCalls = 0;
  /** Index of the call receiving arguments, or -1 (none, or dropped past the limit). */
  private current = -1;
  private readonly maxCalls: number;
  private readonly newId: () => string;

  constructor(opts: ToolParserOptions) {
    this.maxCalls = opts.maxCalls ?? Number.POSITIVE_INFINITY;
    this.newId = opts.newCallId ?? defaultCallId;
  }

  get count(): number {
    return this.numCalls;
  }

  start(name: string, out: OutputDelta[]): void {
    if (this.numCalls >= this.maxCalls) {
      this.current = -1;
      return;
    }
    this.current = this.numCalls++;
    out.push({ type: 'tool_call', index: this.current, id: this.newId(), name });
  }

  args(text: string, out: OutputDelta[]): void {
    if (this.current < 0 || text.length === 0) return;
    const last = out[out.length - 1];
    if (last && last.type === 'tool_args' && last.index === this.current) out[out.length - 1] = { ...last, text: last.text + text };
    else out.push({ type: 'tool_args', index: this.current, text });
  }

  end(): void {
    this.current = -1;
  }
}

/**
 * Content outside calls: whitespace next to a call is layout, not content. Trailing whitespace is
 * held until more text shows it is inside content; it is dropped when a call opens, and leading
 * whitespace after a call is dropped.
 */
export class ContentEmitter {
  private held = '';
  private afterCall = false;

  emit(text: string, out: OutputDelta[]): void {
    let s = text;
    if (this.afterCall) {
      s = s.trimStart();
      if (s.length === 0) return;
      this.afterCall = false;
    }
    const t = this.held + s;
    const end = t.length - (t.length - t.trimEnd().length);
    this.held = t.slice(end);
    if (end > 0) pushContent(out, t.slice(0, end));
  }

  callOpened(): void {
    this.held = '';
  }

  callClosed(): void {
    this.afterCall = true;
  }

  /** End of output: held whitespace is content only when no call was made. */
  finish(numCalls: number, out: OutputDelta[]): void {
    if (numCalls === 0 && this.held.length > 0) pushContent(out, this.held);
    this.held = '';
  }
}

export function pushContent(out: OutputDelta[], text: string, type: 'content' | 'reasoning' = 'content'): void {
  if (text.length === 0) return;
  const last = out[out.length - 1];
  if (last && last.type === type) out[out.length - 1] = { type, text: last.text + text };
  else out.push({ type, text });
}

export interface ParsedToolCall {
  readonly id: string;
  readonly name: string;
  arguments: string;
}

/** A choice's parsed output so far: what a non-streamed response returns. */
export interface ParsedOutput {
  content: string;
  reasoning: string;
  readonly toolCalls: ParsedToolCall[];
}

export function emptyParsedOutput(): ParsedOutput {
  return { content: '', reasoning: '', toolCalls: [] };
}

/** Fold deltas into the accumulated output. */
export function foldDeltas(acc: ParsedOutput, deltas: readonly OutputDelta[]): ParsedOutput {
  for (const d of deltas) {
    if (d.type === 'content') acc.content += d.text;
    else if (d.type === 'reasoning') acc.reasoning += d.text;
    else if (d.type === 'tool_call') acc.toolCalls[d.index] = { id: d.id, name: d.name, arguments: '' };
    else {
      const call = acc.toolCalls[d.index];
      if (call) call.arguments += d.text;
    }
  }
  return acc;
}
