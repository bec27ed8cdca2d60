// Lint: no line over 140 characters in src/ test/ bench/ scripts/ web/ code, so every file reads
// without horizontal scrolling in a side-by-side diff. Exits non-zero listing every line over.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const MAX_COLUMNS = 140;
const ROOTS = ['src', 'test', 'bench', 'scripts', 'web'];
const CODE = /\.(ts|mts|js|mjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'results', 'generated', 'out']);

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

/** Every line over the limit as `file:line (length)`. Length counts UTF-16 code units, as editors' columns mostly do. */
function longLines(): string[] {
  const found: string[] = [];
  for (const root of ROOTS) {
    for (const f of files(resolve(root))) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > MAX_COLUMNS) found.push(`${relative(process.cwd(), f)}:${i + 1} (${line.length})`);
        });
    }
  }
  return found;
}

const over = longLines();
if (over.length > 0) {
  const hint = 'the formatter wraps most: npx biome format --write FILE; split long strings by concatenation';
  console.error(`check-line-length: ${over.length} lines over ${MAX_COLUMNS} columns (${hint}):\n  ${over.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-line-length: ok (no line over ${MAX_COLUMNS} columns)`);
