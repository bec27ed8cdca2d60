// Shared by the generators of checked-in files (gen-errors-doc.ts, gen-cpu-op-abi.ts): write the
// file, or with --check exit 1 when the checked-in copy differs from what the generator produces.
import { readFileSync, writeFileSync } from 'node:fs';

export function writeOrCheck(path: string, expected: string, label: string, regenerate: string): void {
  if (process.argv.includes('--check')) {
    let actual = '';
    try {
      actual = readFileSync(path, 'utf8');
    } catch {
      // missing: stale
    }
    if (actual !== expected) {
      console.error(`${label} is out of date: run \`${regenerate}\``);
      process.exit(1);
    }
    console.log(`${label} is up to date`);
    return;
  }
  writeFileSync(path, expected);
  console.log(`wrote ${path}`);
}
