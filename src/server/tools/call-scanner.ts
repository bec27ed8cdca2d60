// Incremental scanner for one JSON function-call object, `{"name": "f", "arguments": {...}}`
// ("parameters" is a synonym, as Llama 3.1 writes it), fed text in arbitrary pieces. It reports the
// name as soon as it is complete and then the raw text of the arguments value as it arrives, so a
// stream can forward argument fragments without waiting for the whole object. Arguments written
// before the name are held until the name is known. Character-driven: the events do not depend on
// how the text was split. Knows nothing about markers or HTTP.

export type CallEvent = { readonly type: 'name'; readonly name: string } | { readonly type: 'args'; readonly text: string };

type State = 'start' | 'key_or_end' | 'key' | 'colon' | 'value' | 'raw' | 'after_value' | 'done' | 'error';
type ValueKind = 'name' | 'args' | 'skip';

const WS = new Set([' ', '\t', '\n', '\r']);

export class CallScanner {
  private state: State = 'start';
  private key = '';
  private esc = false;
  private kind: ValueKind = 'skip';
  /** Raw value scanning: nesting depth, inside a string, the value's raw text (names and string args). */
  private depth = 0;
  private inStr = false;
  private rawStr = '';
  private primitive = false;
  private name: string | null = null;
  private argsSeen = false;
  private argsHeld = '';
  private readonly events: CallEvent[] = [];

  get isDone(): boolean {
    return this.state === 'done';
  }

  get isError(): boolean {
    return this.state === 'error';
  }

  get hasName(): boolean {
    return this.name !== null;
  }

  /** Feed text; returns how many characters were consumed (less than all once done or failed). */
  push(text: string): number {
    let i = 0;
    while (i < text.length && this.state !== 'done' && this.state !== 'error') {
      if (this.step(text[i]!)) i++;
    }
    return i;
  }

  /** Events since the last take. */
  take(): CallEvent[] {
    return this.events.splice(0);
  }

  /** Process one character; false when it must be seen again in the new state. */
  private step(c: string): boolean {
    switch (this.state) {
      case 'start':
        if (WS.has(c)) return true;
        if (c === '{') {
          this.state = 'key_or_end';
          return true;
        }
        return this.fail();
      case 'key_or_end':
        if (WS.has(c)) return true;
        if (c === '"') {
          this.state = 'key';
          this.key = '';
          this.esc = false;
          return true;
        }
        if (c === '}') return this.end();
        return this.fail();
      case 'key':
        if (this.esc) {
          this.key += c;
          this.esc = false;
          return true;
        }
        if (c === '\\') {
          this.esc = true;
          return true;
        }
        if (c === '"') {
          this.state = 'colon';
          return true;
        }
        this.key += c;
        return true;
      case 'colon':
        if (WS.has(c)) return true;
        if (c === ':') {
          this.state = 'value';
          return true;
        }
        return this.fail();
      case 'value':
        if (WS.has(c)) return true;
        this.kind = this.key === 'name' ? 'name' : this.key === 'arguments' || this.key === 'parameters' ? 'args' : 'skip';
        if (this.kind === 'name' && c !== '"') return this.fail();
        if (this.kind === 'args' && this.argsSeen) this.kind = 'skip';
        if (this.kind === 'args') this.argsSeen = true;
        this.state = 'raw';
        this.depth = 0;
        this.inStr = false;
        this.esc = false;
        this.rawStr = '';
        this.primitive = !(c === '{' || c === '[' || c === '"');
        return false;
      case 'raw':
        return this.raw(c);
      case 'after_value':
        if (WS.has(c)) return true;
        if (c === ',') {
          this.state = 'key_or_end';
          return true;
        }
        if (c === '}') return this.end();
        return this.fail();
      default:
        return true;
    }
  }

  /** One character of a value: strings, nesting and primitives, ending the value when it closes. */
  private raw(c: string): boolean {
    if (this.primitive) {
      if (c === ',' || c === '}' || WS.has(c)) {
        this.valueDone();
        return false;
      }
      if (!/[-+.\w]/.test(c)) return this.fail();
      this.emitRaw(c);
      return true;
    }
    this.emitRaw(c);
    if (this.inStr) {
      if (this.esc) this.esc = false;
      else if (c === '\\') this.esc = true;
      else if (c === '"') {
        this.inStr = false;
        if (this.depth === 0) this.valueDone();
      }
      return true;
    }
    if (c === '"') this.inStr = true;
    else if (c === '{' || c === '[') this.depth++;
    else if (c === '}' || c === ']') {
      this.depth--;
      if (this.depth === 0) this.valueDone();
      else if (this.depth < 0) return this.fail();
    } else if (this.depth === 0) return this.fail();
    return true;
  }

  private emitRaw(c: string): void {
    if (this.kind === 'skip') return;
    // A name, or arguments written as a JSON string literal, are decoded when complete.
    if (this.kind === 'name' || (this.kind === 'args' && (this.rawStr.length > 0 || (c === '"' && this.depth === 0 && !this.inStr)))) {
      this.rawStr += c;
      return;
    }
    this.args(c);
  }

  private args(text: string): void {
    if (this.name === null) this.argsHeld += text;
    else this.events.push({ type: 'args', text });
  }

  private valueDone(): void {
    this.state = 'after_value';
    if (this.kind === 'name' || (this.kind === 'args' && this.rawStr.length > 0)) {
      let s: unknown;
      try {
        s = JSON.parse(this.rawStr);
      } catch {
        this.fail();
        return;
      }
      if (typeof s !== 'string' || (this.kind === 'name' && s.length === 0)) {
        this.fail();
        return;
      }
      if (this.kind === 'args') {
        this.args(s);
        return;
      }
      if (this.name !== null) return; // a second "name" key: the first wins
      this.name = s;
      this.events.push({ type: 'name', name: s });
      if (this.argsHeld.length > 0) this.events.push({ type: 'args', text: this.argsHeld });
      this.argsHeld = '';
    }
  }

  private end(): boolean {
    if (this.name === null) return this.fail();
    if (!this.argsSeen) this.events.push({ type: 'args', text: '{}' });
    this.state = 'done';
    return true;
  }

  private fail(): boolean {
    this.state = 'error';
    return true;
  }
}
