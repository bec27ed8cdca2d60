// Llama 3.1+ JSON tool calls: the whole answer is one or more call objects, optionally after
// <|python_tag|>, separated by ';' (as Meta's template and vLLM's llama3_json parser read them):
//   <|python_tag|>{"name": "f", "parameters": {...}}; {"name": "g", "parameters": {...}}
// The choice is made at the first non-space character: '{' or the tag starts calls, anything else
// is plain content. An object that is not a call (no name) before its name completes is content.

import { CallScanner } from './call-scanner.js';
import { MarkerSet } from './markers.js';
import { BufferedStreamParser, CallTracker, pushContent, type OutputDelta, type ToolParserOptions } from './output-parser.js';

const TAG = '<|python_tag|>';

type Mode = 'start' | 'content' | 'calls' | 'between' | 'drop';

export class Llama3JsonToolParser extends BufferedStreamParser {
  protected readonly markers: MarkerSet;
  private readonly calls: CallTracker;
  private mode: Mode = 'start';
  private scanner: CallScanner | null = null;
  /** Text of the output so far while the first call has not started (the content fallback). */
  private raw = '';

  constructor(opts: ToolParserOptions = {}) {
    super();
    this.markers = new MarkerSet([TAG], opts.singleTokenId ?? null);
    this.calls = new CallTracker(opts);
  }

  protected flushRest(out: OutputDelta[]): void {
    if (this.mode === 'start' || (this.mode === 'calls' && this.calls.count === 0)) pushContent(out, this.raw + this.buf);
  }

  protected run(out: OutputDelta[], atEnd: boolean): void {
    for (;;) {
      if (this.mode === 'start') {
        const s = this.buf.trimStart();
        if (s.length === 0) return;
        const hit = this.markers.find(s, 0);
        if (hit !== null && hit.at === 0) {
          this.markers.consume(TAG);
          this.raw = this.buf.slice(0, this.buf.length - s.length);
          this.buf = s.slice(TAG.length);
          this.mode = 'between';
          continue;
        }
        if (s[0] === '{') {
          this.raw = '';
          this.mode = 'between';
          continue;
        }
        if (!atEnd && this.markers.holdLength(s) === s.length) return; // could still be the tag
        this.mode = 'content';
      }
      if (this.mode === 'content' || this.mode === 'drop') {
        if (this.mode === 'content') pushContent(out, this.buf);
        this.buf = '';
        return;
      }
      if (this.mode === 'between') {
        const m = /^[\s;,]*/.exec(this.buf)![0];
        if (this.calls.count === 0) this.raw += m;
        this.buf = this.buf.slice(m.length);
        if (this.buf.length === 0) return;
        if (this.buf[0] !== '{') {
          this.mode = this.calls.count === 0 ? 'content' : 'drop';
          if (this.mode === 'content') {
            this.buf = this.raw + this.buf;
            this.raw = '';
          }
          continue;
        }
        this.scanner = new CallScanner();
        this.mode = 'calls';
      }
      if (this.mode === 'calls') {
        const sc = this.scanner!;
        const used = sc.push(this.buf);
        if (this.calls.count === 0) this.raw += this.buf.slice(0, used);
        this.buf = this.buf.slice(used);
        for (const ev of sc.take()) {
          if (ev.type === 'name') this.calls.start(ev.name, out);
          else this.calls.args(ev.text, out);
        }
        if (sc.isError) {
          if (this.calls.count === 0 && !sc.hasName) {
            this.mode = 'content'; // not a call after all: everything so far is content
            this.buf = this.raw + this.buf;
            this.raw = '';
            continue;
          }
          this.mode = 'drop';
          continue;
        }
        if (!sc.isDone) return;
        this.calls.end();
        this.raw = '';
        this.mode = 'between';
      }
    }
  }
}
