// Mistral tool calls after the [TOOL_CALLS] control token, in both of Mistral's layouts:
//   text[TOOL_CALLS][{"name": "f", "arguments": {...}}, {"name": "g", ...}]   (tokenizer v2/v3)
//   text[TOOL_CALLS]f[ARGS]{...}[TOOL_CALLS]g[ARGS]{...}                       (tokenizer v11+)
// Text before the marker is content; the markers never reach it.

import { CallScanner } from './call-scanner.js';
import { MarkerSet } from './markers.js';
import { BufferedStreamParser, CallTracker, ContentEmitter, type OutputDelta, type ToolParserOptions } from './output-parser.js';

const CALLS = '[TOOL_CALLS]';
const ARGS = '[ARGS]';

type Mode = 'text' | 'after_marker' | 'array' | 'object' | 'name' | 'args' | 'drop';

export class MistralToolParser extends BufferedStreamParser {
  protected readonly markers: MarkerSet;
  private readonly calls: CallTracker;
  private readonly content = new ContentEmitter();
  private mode: Mode = 'text';
  private scanner: CallScanner | null = null;
  private name = '';
  /** Raw JSON value scanning for [ARGS]: nesting depth and string state. */
  private depth = 0;
  private inStr = false;
  private esc = false;
  private argsStarted = false;

  constructor(opts: ToolParserOptions = {}) {
    super();
    this.markers = new MarkerSet([CALLS, ARGS], opts.singleTokenId ?? null);
    this.calls = new CallTracker(opts);
  }

  protected flushRest(out: OutputDelta[]): void {
    if (this.mode === 'text') this.content.emit(this.buf, out);
    this.content.finish(this.calls.count, out);
  }

  protected run(out: OutputDelta[], atEnd: boolean): void {
    while (this.buf.length > 0) {
      switch (this.mode) {
        case 'text': {
          const hit = this.markers.find(this.buf, 0, [CALLS]);
          if (hit === null) {
            const keep = atEnd ? 0 : this.markers.holdLength(this.buf, [CALLS]);
            this.content.emit(this.buf.slice(0, this.buf.length - keep), out);
            this.buf = this.buf.slice(this.buf.length - keep);
            return;
          }
          this.content.emit(this.buf.slice(0, hit.at), out);
          this.content.callOpened();
          this.markers.consume(CALLS);
          this.buf = this.buf.slice(hit.at + CALLS.length);
          this.mode = 'after_marker';
          break;
        }
        case 'after_marker': {
          this.buf = this.buf.trimStart();
          if (this.buf.length === 0) return;
          if (this.buf[0] === '[') {
            this.buf = this.buf.slice(1);
            this.mode = 'array';
          } else {
            this.name = '';
            this.mode = 'name';
          }
          break;
        }
        case 'array': {
          const m = /^[\s,]*/.exec(this.buf)![0];
          this.buf = this.buf.slice(m.length);
          if (this.buf.length === 0) return;
          if (this.buf[0] === ']') {
            this.buf = this.buf.slice(1);
            this.endCalls();
            break;
          }
          if (this.buf[0] !== '{') {
            this.mode = 'drop';
            break;
          }
          this.scanner = new CallScanner();
          this.mode = 'object';
          break;
        }
        case 'object': {
          const sc = this.scanner!;
          this.buf = this.buf.slice(sc.push(this.buf));
          for (const ev of sc.take()) {
            if (ev.type === 'name') this.calls.start(ev.name, out);
            else this.calls.args(ev.text, out);
          }
          if (sc.isError) {
            this.mode = 'drop';
            break;
          }
          if (!sc.isDone) return;
          this.calls.end();
          this.mode = 'array';
          break;
        }
        case 'name': {
          const hit = this.markers.find(this.buf, 0, [ARGS]);
          if (hit === null) {
            const keep = this.markers.holdLength(this.buf, [ARGS]);
            this.name += this.buf.slice(0, this.buf.length - keep);
            this.buf = this.buf.slice(this.buf.length - keep);
            if (this.name.length > 256 || /[\s{}[\]"]/.test(this.name)) this.mode = 'drop';
            return;
          }
          this.name += this.buf.slice(0, hit.at);
          this.markers.consume(ARGS);
          this.buf = this.buf.slice(hit.at + ARGS.length);
          if (!/^[\w.-]{1,256}$/.test(this.name)) {
            this.mode = 'drop';
            break;
          }
          this.calls.start(this.name, out);
          this.depth = 0;
          this.inStr = false;
          this.esc = false;
          this.argsStarted = false;
          this.mode = 'args';
          break;
        }
        case 'args':
          this.args(out);
          break;
        case 'drop':
          this.buf = '';
          return;
      }
    }
  }

  /** Forward the raw [ARGS] JSON value until it closes; then the next [TOOL_CALLS] or content. */
  private args(out: OutputDelta[]): void {
    let i = 0;
    let from = 0;
    let closed = false;
    for (; i < this.buf.length && !closed; i++) {
      const c = this.buf[i]!;
      if (!this.argsStarted) {
        if (/\s/.test(c)) {
          from = i + 1;
          continue;
        }
        if (c !== '{' && c !== '[') {
          this.mode = 'drop';
          return;
        }
        this.argsStarted = true;
      }
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (c === '\\') this.esc = true;
        else if (c === '"') this.inStr = false;
      } else if (c === '"') this.inStr = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') closed = --this.depth === 0;
    }
    this.calls.args(this.buf.slice(from, i), out);
    this.buf = this.buf.slice(i);
    if (closed) this.endCalls();
  }

  private endCalls(): void {
    this.calls.end();
    this.content.callClosed();
    this.mode = 'text';
  }
}
