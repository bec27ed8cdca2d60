// Hermes-style tool calls, as Qwen2.5 / Qwen3 (and Hermes, QwQ) write them:
//   text <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>\n<tool_call>...</tool_call>
// Text outside the blocks is content; the markers never reach it. A block that is not a valid call
// object before its name is complete falls back to content (its inner text, markers removed).

import { CallScanner } from './call-scanner.js';
import { MarkerSet } from './markers.js';
import { CallTracker, ContentEmitter, type OutputDelta, type StreamParser, type ToolParserOptions } from './output-parser.js';

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

export class HermesToolParser implements StreamParser {
  private readonly markers: MarkerSet;
  private readonly calls: CallTracker;
  private readonly content = new ContentEmitter();
  private buf = '';
  private scanner: CallScanner | null = null;
  /** Inner text of the open block while its call has not started (the content fallback). */
  private raw = '';
  private started = false;

  constructor(opts: ToolParserOptions = {}) {
    this.markers = new MarkerSet([OPEN, CLOSE], opts.singleTokenId ?? null);
    this.calls = new CallTracker(opts);
  }

  push(text: string, tokenIds: readonly number[]): OutputDelta[] {
    this.markers.noteIds(tokenIds);
    this.buf += text;
    const out: OutputDelta[] = [];
    for (;;) {
      const marker = this.scanner === null ? OPEN : CLOSE;
      const hit = this.markers.find(this.buf, 0, [marker]);
      if (hit === null) {
        const keep = this.markers.holdLength(this.buf, [marker]);
        this.text(this.buf.slice(0, this.buf.length - keep), out);
        this.buf = this.buf.slice(this.buf.length - keep);
        return out;
      }
      this.text(this.buf.slice(0, hit.at), out);
      this.markers.consume(marker);
      this.buf = this.buf.slice(hit.at + marker.length);
      if (this.scanner === null) this.open();
      else this.close(out);
    }
  }

  finish(): OutputDelta[] {
    const out: OutputDelta[] = [];
    this.text(this.buf, out);
    this.buf = '';
    if (this.scanner !== null) this.close(out);
    this.content.finish(this.calls.count, out);
    return out;
  }

  private open(): void {
    this.content.callOpened();
    this.scanner = new CallScanner();
    this.raw = '';
    this.started = false;
  }

  private close(out: OutputDelta[]): void {
    if (!this.started)
      this.content.emit(this.raw, out); // not a call: its text is content
    else this.content.callClosed();
    this.calls.end();
    this.scanner = null;
  }

  /** Text outside a block is content; inside, it feeds the call scanner. */
  private text(s: string, out: OutputDelta[]): void {
    if (s.length === 0) return;
    const sc = this.scanner;
    if (sc === null) {
      this.content.emit(s, out);
      return;
    }
    if (!this.started) this.raw += s;
    sc.push(s); // text after the object (or after an error) is dropped
    for (const ev of sc.take()) {
      if (ev.type === 'name') {
        this.started = true;
        this.raw = '';
        this.calls.start(ev.name, out);
      } else this.calls.args(ev.text, out);
    }
  }
}
