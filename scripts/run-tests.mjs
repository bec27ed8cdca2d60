#!/usr/bin/env node
// Finds every *.test.ts under test/ and src/ and runs them with node's test runner (through tsx).
// Usage: node scripts/run-tests.mjs [--gpu] [filter...]. GPU suites (*.gpu.test.ts) run only with --gpu.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const gpu = args.includes('--gpu');
const filters = args.filter((a) => !a.startsWith('--'));
const roots = ['test', 'src'];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith('.test.ts')) {
      const isGpu = e.endsWith('.gpu.test.ts');
      if (isGpu !== gpu) continue;
      files.push(relative(process.cwd(), p));
    }
  }
}
for (const r of roots) walk(r);
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected],
  { stdio: 'inherit', env: process.env },
);
process.exit(res.status ?? 1);
