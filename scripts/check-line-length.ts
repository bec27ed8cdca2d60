// Lint: no line over 140 characters in src/ test/ bench/ scripts/ web/ code. Lines that were already
// long when the check arrived are counted per file in scripts/long-lines-baseline.json; a file may
// not exceed its count (new files: zero), so the number only goes down. `--update` rewrites the
// baseline to today's counts (run it after `npm run format`, which wraps most of them).
// Exits non-zero listing every line of a file over its allowance.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const MAX_COLUMNS = 140;
const ROOTS = ['src', 'test', 'bench', 'scripts', 'web'];
const CODE = /\.(ts|mts|js|mjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'results', 'generated', 'out']);
const BASELINE = resolve('scripts/long-lines-baseline.json');

function files(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.startsWith('.') || SKIP_DIRS.has(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (CODE.test(e)) out.push(p);
  }
  return out;
}

/** Long lines per file: [1-based line number, length]. Length counts UTF-16 code units, as editors' columns mostly do. */
function longLines(): Map<string, [number, number][]> {
  const byFile = new Map<string, [number, number][]>();
  for (const root of ROOTS) {
    for (const f of files(resolve(root))) {
      const long: [number, number][] = [];
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > MAX_COLUMNS) long.push([i + 1, line.length]);
        });
      if (long.length > 0) byFile.set(relative(process.cwd(), f), long);
    }
  }
  return byFile;
}

const found = longLines();
if (process.argv.includes('--update')) {
  const counts = Object.fromEntries([...found].sort(([a], [b]) => a.localeCompare(b)).map(([f, l]) => [f, l.length]));
  writeFileSync(BASELINE, `${JSON.stringify(counts, null, 2)}\n`);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`check-line-length: baseline rewritten: ${total} lines over ${MAX_COLUMNS} in ${found.size} files`);
  process.exit(0);
}
const allowed = JSON.parse(readFileSync(BASELINE, 'utf8')) as Record<string, number>;
const over: string[] = [];
let total = 0;
for (const [f, lines] of found) {
  total += lines.length;
  const allowance = allowed[f] ?? 0;
  if (lines.length > allowance) {
    const where = lines.map(([n, len]) => `${n} (${len})`).join(', ');
    over.push(`${f}: ${lines.length} lines over ${MAX_COLUMNS} columns, ${allowance} allowed: ${where}`);
  }
}
if (over.length > 0) {
  const hint = 'the formatter wraps most: npx biome format --write FILE';
  console.error(`check-line-length: wrap lines to ${MAX_COLUMNS} columns (${hint}):\n  ${over.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-line-length: ok (${total} old lines over ${MAX_COLUMNS} left in the baseline; no new ones)`);
