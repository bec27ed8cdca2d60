// Qwen3 / DeepSeek-R1 style reasoning: `<think>\nreasoning\n</think>\n\nanswer`. The reasoning goes
// to reasoning_content and the rest to content; the tags never reach either. Reasoning is on when
// the output opens with <think>, or when the prompt already opened it (templates that end the
// generation prompt with "<think>\n"). An empty think block in the prompt (Qwen3's
// enable_thinking: false) leaves the output plain content. Also counts reasoning tokens.

import { MarkerSet, type SingleTokenLookup } from '../tools/markers.js';
import { BufferedStreamParser, pushContent, type OutputDelta } from '../tools/output-parser.js';

const OPEN = '<think>';
const CLOSE = '</think>';

type Mode = 'start' | 'reasoning' | 'content';

export interface ThinkParserOptions {
  readonly singleTokenId?: SingleTokenLookup | null;
  /** The prompt ends inside an open think block. */
  readonly promptOpened?: boolean;
}

/** True when a rendered prompt ends inside an unclosed <think> block. */
export function promptOpensThink(prompt: string): boolean {
  const open = prompt.lastIndexOf(OPEN);
  return open >= 0 && prompt.indexOf(CLOSE, open) < 0 && prompt.slice(open + OPEN.length).trim().length === 0;
}

export class ThinkParser extends BufferedStreamParser {
  protected readonly markers: MarkerSet;
  private mode: Mode;
  /** Reasoning: leading whitespace not yet dropped, trailing whitespace held until more text. */
  private reasoningStarted = false;
  private held = '';
  /** Content right after </think>: its leading whitespace is layout. */
  private trimContent = false;
  /** Token-level accounting (exact when the tags are single tokens). */
  private readonly openId: number | null;
  private readonly closeId: number | null;
  private tokensIn: 'unknown' | 'reasoning' | 'done' | 'none';
  private numReasoning = 0;

  constructor(opts: ThinkParserOptions = {}) {
    super();
    const lookup = opts.singleTokenId ?? null;
    this.markers = new MarkerSet([OPEN, CLOSE], lookup);
    this.mode = opts.promptOpened ? 'reasoning' : 'start';
    this.openId = lookup?.(OPEN) ?? null;
    this.closeId = lookup?.(CLOSE) ?? null;
    this.tokensIn = opts.promptOpened ? 'reasoning' : 'unknown';
  }

  /** Generated tokens that belong to the reasoning (think tags included). */
  get numReasoningTokens(): number {
    return this.numReasoning;
  }

  protected flushRest(out: OutputDelta[]): void {
    if (this.mode === 'start') pushContent(out, this.buf); // whitespace only
    if (this.mode === 'reasoning') pushContent(out, this.held, 'reasoning'); // never closed
    this.held = '';
  }

  protected override noteTokens(ids: readonly number[]): void {
    for (const id of ids) {
      if (this.tokensIn === 'unknown') this.tokensIn = this.openId !== null && id === this.openId ? 'reasoning' : 'none';
      if (this.tokensIn !== 'reasoning') continue;
      this.numReasoning++;
      if (this.closeId !== null && id === this.closeId) this.tokensIn = 'done';
    }
  }

  protected run(out: OutputDelta[], atEnd: boolean): void {
    for (;;) {
      if (this.mode === 'start') {
        const s = this.buf.trimStart();
        if (s.length === 0) return;
        const hit = this.markers.find(s, 0, [OPEN]);
        if (hit !== null && hit.at === 0) {
          this.markers.consume(OPEN);
          this.buf = s.slice(OPEN.length);
          this.mode = 'reasoning';
          continue;
        }
        if (!atEnd && this.markers.holdLength(s, [OPEN]) === s.length) return;
        this.mode = 'content';
        if (this.tokensIn === 'unknown') this.tokensIn = 'none';
      }
      if (this.mode === 'content') {
        let s = this.buf;
        if (this.trimContent) {
          s = s.trimStart();
          if (s.length > 0) this.trimContent = false;
        }
        pushContent(out, s);
        this.buf = '';
        return;
      }
      // reasoning
      const hit = this.markers.find(this.buf, 0, [CLOSE]);
      if (hit === null) {
        const keep = atEnd ? 0 : this.markers.holdLength(this.buf, [CLOSE]);
        this.reasoning(this.buf.slice(0, this.buf.length - keep), out);
        this.buf = this.buf.slice(this.buf.length - keep);
        return;
      }
      this.reasoning(this.buf.slice(0, hit.at), out);
      this.markers.consume(CLOSE);
      this.held = ''; // whitespace before </think> is layout
      this.buf = this.buf.slice(hit.at + CLOSE.length);
      this.mode = 'content';
      this.trimContent = true;
    }
  }

  private reasoning(text: string, out: OutputDelta[]): void {
    let s = text;
    if (!this.reasoningStarted) {
      s = s.trimStart();
      if (s.length === 0) return;
      this.reasoningStarted = true;
    }
    const t = this.held + s;
    const end = t.trimEnd().length;
    this.held = t.slice(end);
    pushContent(out, t.slice(0, end), 'reasoning');
  }
}
