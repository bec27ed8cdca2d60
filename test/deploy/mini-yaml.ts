// Test helper: a strict parser for the YAML subset our Kubernetes manifests use (no YAML package is
// installed): `---` documents, block mappings and sequences indented with spaces, plain / single- /
// double-quoted scalars, JSON-style flow collections, `|` literal blocks and comments. Anything else
// (anchors, tags, tabs, duplicate keys, multi-line plain scalars) throws, so a manifest cannot drift
// into syntax this checker would misread.

interface Line {
  readonly indent: number;
  readonly text: string;
  readonly no: number;
  readonly raw: string;
}

export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };

class YamlError extends Error {}

function fail(line: Line | undefined, why: string): never {
  throw new YamlError(`yaml line ${line?.no ?? 'EOF'}: ${why}${line ? `: ${line.raw.trim()}` : ''}`);
}

/** Strip a trailing comment: '#' at the start or after a space, outside quotes. */
function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q !== null) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || s[i - 1] === ' ')) return s.slice(0, i).trimEnd();
  }
  return s.trimEnd();
}

function scalar(text: string, line: Line): YamlValue {
  const t = text.trim();
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      fail(line, 'bad double-quoted string');
    }
  }
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) fail(line, 'bad single-quoted string');
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t) as YamlValue;
    } catch {
      fail(line, 'flow collections must be JSON-compatible here');
    }
  }
  if (/^[&*!|>%@`]/.test(t)) fail(line, 'anchors, aliases, tags and folded scalars are outside the supported subset');
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null' || t === '~' || t === '') return null;
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (/^(yes|no|on|off|y|n)$/i.test(t)) fail(line, `ambiguous YAML 1.1 boolean '${t}': quote it`);
  return t;
}

/** Index of the ':' ending a mapping key (followed by a space or the end), outside quotes; -1 if none. */
function keyColon(s: string): number {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q !== null) {
      if (c === q) q = null;
      continue;
    }
    if (c === '"' || c === "'") q = c;
    else if (c === '[' || c === '{') return -1;
    else if (c === ':' && (i + 1 === s.length || s[i + 1] === ' ')) return i;
  }
  return -1;
}

class Parser {
  i = 0;
  constructor(private readonly lines: Line[]) {}

  block(indent: number): YamlValue {
    const l = this.lines[this.i];
    if (l === undefined || l.indent < indent) return null;
    return l.text === '-' || l.text.startsWith('- ') ? this.seq(l.indent) : this.map(l.indent);
  }

  /** A value after 'key:' or '- ' on the line `l`: inline, a literal block, or a nested block. */
  private value(rest: string, l: Line, parentIndent: number): YamlValue {
    if (rest === '|' || rest === '|-') return this.literal(parentIndent, rest === '|');
    if (rest !== '') return scalar(rest, l);
    const next = this.lines[this.i];
    if (next === undefined) return null;
    if (next.indent > parentIndent) return this.block(next.indent);
    if (next.indent === parentIndent && (next.text === '-' || next.text.startsWith('- ')) && !l.text.startsWith('-'))
      return this.seq(parentIndent);
    return null;
  }

  private literal(parentIndent: number, keepNewline: boolean): string {
    const out: string[] = [];
    let base = -1;
    while (this.i < this.lines.length && this.lines[this.i]!.indent > parentIndent) {
      const l = this.lines[this.i++]!;
      if (base < 0) base = l.indent;
      out.push(l.raw.slice(base));
    }
    return out.join('\n') + (keepNewline ? '\n' : '');
  }

  private map(indent: number): { [k: string]: YamlValue } {
    const out: { [k: string]: YamlValue } = {};
    while (this.i < this.lines.length) {
      const l = this.lines[this.i]!;
      if (l.indent < indent || l.text === '-' || l.text.startsWith('- ')) break;
      if (l.indent > indent) fail(l, 'unexpected indentation');
      const c = keyColon(l.text);
      if (c < 0) fail(l, 'expected "key: value"');
      const rawKey = l.text.slice(0, c).trim();
      const key = rawKey.startsWith('"') || rawKey.startsWith("'") ? String(scalar(rawKey, l)) : rawKey;
      if (Object.hasOwn(out, key)) fail(l, `duplicate key '${key}'`);
      this.i++;
      out[key] = this.value(l.text.slice(c + 1).trim(), l, indent);
    }
    return out;
  }

  private seq(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    while (this.i < this.lines.length) {
      const l = this.lines[this.i]!;
      if (l.indent !== indent || !(l.text === '-' || l.text.startsWith('- '))) {
        if (l.indent > indent) fail(l, 'unexpected indentation');
        break;
      }
      const rest = l.text.slice(1).trimStart();
      const inner = indent + (l.text.length - rest.length);
      if (rest !== '' && keyColon(rest) >= 0 && !rest.startsWith('"') && !rest.startsWith("'")) {
        // "- key: value" opens a mapping whose keys sit at the column after the dash.
        this.lines[this.i] = { ...l, indent: inner, text: rest };
        out.push(this.map(inner));
      } else {
        this.i++;
        out.push(this.value(rest, l, indent));
      }
    }
    return out;
  }
}

/** Parse a multi-document YAML text (subset) into one value per document (empty documents dropped). */
export function parseYamlDocuments(text: string): YamlValue[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, k) => {
    if (/^---\s*$/.test(raw)) {
      docs.push([]);
      return;
    }
    if (raw.includes('\t') && raw.trim() !== '') fail({ indent: 0, text: raw, no: k + 1, raw }, 'tabs are not allowed');
    const text = stripComment(raw);
    if (text.trim() === '') {
      // Blank lines survive only inside literal blocks, where they are rare: drop them.
      return;
    }
    const indent = text.length - text.trimStart().length;
    docs[docs.length - 1]!.push({ indent, text: text.trim(), no: k + 1, raw });
  });
  return docs
    .filter((d) => d.length > 0)
    .map((lines) => {
      const p = new Parser(lines);
      const v = p.block(0);
      if (p.i < lines.length) fail(lines[p.i], 'unexpected content');
      return v;
    });
}
