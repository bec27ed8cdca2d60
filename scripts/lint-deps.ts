// Lint: the dependency direction of ../shared/ARCHITECTURE.md. Imports in src/ go one way,
// util <- runtime <- model <- engine <- server <- cli (metrics: imported by engine, server, cli;
// it may import util and runtime). runtime/cpu and runtime/cuda are reached only through
// runtime/select.ts. Exits non-zero listing every violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');
const LAYER: Record<string, number> = { util: 0, runtime: 1, model: 2, metrics: 2.5, engine: 3, server: 4, cli: 5, 'index.ts': 6 };
const ALLOWED_EXTRA: Record<string, string[]> = { metrics: ['util', 'runtime'] };

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (e.endsWith('.ts')) out.push(p);
  }
  return out;
}

function topOf(p: string): string {
  return relative(SRC, p).split('/')[0]!;
}

function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  if (from === 'metrics') return (ALLOWED_EXTRA.metrics ?? []).includes(to);
  if (to === 'metrics') return LAYER[from]! >= LAYER.engine!;
  return LAYER[to]! <= LAYER[from]!;
}

const problems: string[] = [];
const importRe = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
for (const file of files(SRC)) {
  const text = readFileSync(file, 'utf8');
  const from = topOf(file);
  if (LAYER[from] === undefined) problems.push(`${relative('.', file)}: unknown top-level folder '${from}'`);
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(SRC)) {
      problems.push(`${relative('.', file)}: imports outside src: ${spec}`);
      continue;
    }
    const to = topOf(target);
    if (LAYER[to] !== undefined && !allowed(from, to)) {
      problems.push(`${relative('.', file)}: layer '${from}' must not import '${to}' (${spec})`);
    }
    const relTarget = relative(SRC, target);
    const relFile = relative(SRC, file);
    for (const impl of ['runtime/cpu/', 'runtime/cuda/']) {
      if (relTarget.startsWith(impl) && !relFile.startsWith(impl) && relFile !== 'runtime/select.ts') {
        problems.push(`${relFile}: reaches ${impl} directly (${spec}); go through runtime/select.ts`);
      }
    }
  }
}
if (problems.length > 0) {
  console.error(`lint-deps: ${problems.length} violation(s)`);
  for (const p of problems) console.error('  ' + p);
  process.exit(1);
}
console.log(`lint-deps: ok (${files(SRC).length} files)`);
