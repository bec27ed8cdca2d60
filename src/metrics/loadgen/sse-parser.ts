// Incremental server-sent-events parser (WHATWG EventSource rules, the subset OpenAI streams use):
// bytes arrive in arbitrary chunks (split lines, split UTF-8 characters, \r\n or \n), events end at
// a blank line, `data:` lines join with \n, `:` lines are comments. Never buffers a finished event.

export interface SseEvent {
  readonly event: string | null;
  readonly data: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buf = '';
  private data: string[] = [];
  private event: string | null = null;
  private sawCr = false;

  /** Feed raw bytes (or already-decoded text); returns the events completed by this chunk. */
  push(chunk: Uint8Array | string): SseEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let s = this.buf + text;
    // A \r at the end of the previous chunk already ended its line: drop the \n that pairs with it.
    if (this.sawCr && s.startsWith('\n')) s = s.slice(1);
    this.sawCr = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(s.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < s.length) {
          if (s.charCodeAt(i + 1) === 10) i++;
        } else this.sawCr = true;
      }
      start = i + 1;
    }
    this.buf = s.slice(start);
    return out;
  }

  /** End of stream: an unterminated event is dropped (as EventSource does). Returns nothing. */
  end(): SseEvent[] {
    const tail = this.decoder.decode();
    const out = tail.length > 0 ? this.push(tail) : [];
    this.buf = '';
    this.data = [];
    this.event = null;
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line.length === 0) {
      if (this.data.length > 0) out.push({ event: this.event, data: this.data.join('\n') });
      this.data = [];
      this.event = null;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
  }
}
