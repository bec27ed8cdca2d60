// Test helper: a strict parser of the Prometheus text exposition format (0.0.4). Every sample must
// belong to a family announced by # TYPE; label values must be correctly quoted and escaped; values
// are floats (NaN, +Inf, -Inf allowed); histogram buckets must be cumulative and end at the count.
// Throws on the first violation with the line number.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, where: string): number {
  // Prometheus reads these case-insensitively (Go's ParseFloat); prom-client writes 'Nan'.
  if (/^nan$/i.test(s)) return Number.NaN;
  if (/^\+?inf$/i.test(s)) return Infinity;
  if (/^-inf$/i.test(s)) return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad value '${s}'`);
  return Number(s);
}

function parseLabels(s: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(s.slice(i));
    if (!m) throw new Error(`${where}: bad label at '${s.slice(i)}'`);
    i += m[0].length;
    let v = '';
    for (;;) {
      if (i >= s.length) throw new Error(`${where}: unterminated label value`);
      const c = s[i]!;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === 'n') v += '\n';
        else if (n === '\\' || n === '"') v += n;
        else throw new Error(`${where}: bad escape \\${n}`);
        i += 2;
      } else if (c === '"') {
        i++;
        break;
      } else {
        v += c;
        i++;
      }
    }
    if (m[1]! in out) throw new Error(`${where}: duplicate label ${m[1]}`);
    out[m[1]!] = v;
    if (s[i] === ',') i++;
    else if (i < s.length) throw new Error(`${where}: expected ',' in labels`);
  }
  return out;
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  if (families.has(name)) return families.get(name);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition must end with a newline');
  for (const [n, line] of lines.entries()) {
    const where = `line ${n + 1}`;
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const [name, ...rest] = line.slice(7).split(' ');
      if (!NAME.test(name!)) throw new Error(`${where}: bad metric name ${name}`);
      helps.set(name!, rest.join(' '));
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!NAME.test(name!) || !TYPES.has(type!)) throw new Error(`${where}: bad TYPE line`);
      if (families.has(name!)) throw new Error(`${where}: ${name} announced twice`);
      families.set(name!, { name: name!, type: type!, help: helps.get(name!) ?? '', samples: [] });
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample: ${line}`);
    const fam = familyOf(m[1]!, families);
    if (!fam) throw new Error(`${where}: sample ${m[1]} has no # TYPE`);
    fam.samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', where), value: parseValue(m[3]!, where) });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    const e = series.get(key) ?? { buckets: [] };
    if (s.name.endsWith('_bucket')) e.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
    if (s.name.endsWith('_count')) e.count = s.value;
    series.set(key, e);
  }
  for (const [key, e] of series) {
    e.buckets.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < e.buckets.length; i++)
      if (e.buckets[i]![1] < e.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: buckets not cumulative`);
    const inf = e.buckets.at(-1);
    if (!inf || inf[0] !== Infinity || inf[1] !== e.count) throw new Error(`${f.name}${key}: +Inf bucket must equal _count`);
  }
}

/** Sum of a family's samples named `name` whose labels include `match`. */
export function valueOf(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number | undefined {
  const fam = familyOf(name, families);
  if (!fam) return undefined;
  let found = false;
  let sum = 0;
  for (const s of fam.samples) {
    if (s.name !== name || !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    found = true;
    sum += s.value;
  }
  return found ? sum : undefined;
}
