// The long mutation run: N seeded mutants per format (default 500) through the same child-process
// harness as test/reliability (each must load and generate a token, or fail with a typed error
// naming the file; never crash, hang or balloon). Prints a tally per format, lists every bug, and
// writes a JSON record under bench/results/. Exit status 1 when any mutant is a bug.
//
//   node --import tsx bench/soak/mutants.ts --count 500 [--seed 1] [--formats safetensors,gguf] [--output FILE]
//
// About 0.2-0.5 s per mutant on one core: 6 formats x 500 takes ~15-30 min.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gitCommitOf } from '../../src/cli/bench-common.js';
import { environmentFingerprint } from '../../src/metrics/fingerprint.js';
import { FORMATS, writeBases, type Format } from '../../test/reliability/mutation/formats.js';
import { BUG_VERDICTS, runMutants, tally, type MutantResult } from '../../test/reliability/mutation/run-mutants.js';

const { values: a } = parseArgs({
  options: {
    count: { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
    formats: { type: 'string' },
    output: { type: 'string' },
  },
});
const count = Number(a.count);
const seed = Number(a.seed);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count ${a.count}: a positive integer`);
const formats = (a.formats?.split(',') ?? [...FORMATS]) as Format[];
for (const f of formats) if (!FORMATS.includes(f)) throw new Error(`--formats: ${f} is not one of ${FORMATS.join(', ')}`);

const work = mkdtempSync(join(tmpdir(), 'tm-mutants-'));
const t0 = Date.now();
const perFormat: Record<
  string,
  { tried: number; tally: ReturnType<typeof tally>; outcomes: Record<string, number>; bugs: MutantResult[]; maxMs: number }
> = {};
try {
  const bases = writeBases(join(work, 'bases'));
  for (const format of formats) {
    let done = 0;
    const results = await runMutants({
      bases,
      format,
      count,
      seed,
      workDir: work,
      onResult: () => {
        if (++done % 50 === 0) process.stderr.write(`[mutants] ${format}: ${done}/${count}\n`);
      },
    });
    const bugs = results.filter((r) => BUG_VERDICTS.includes(r.verdict));
    // Which stage each mutant stopped at and why: shows how deep the mutator reaches.
    const outcomes: Record<string, number> = {};
    for (const r of results) {
      const k = `${r.verdict}@${r.stage ?? '-'}:${r.code ?? ''}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    perFormat[format] = { tried: results.length, tally: tally(results), outcomes, bugs, maxMs: Math.max(...results.map((r) => r.ms)) };
    console.log(`${format}: ${JSON.stringify(tally(results))}, slowest ${perFormat[format]!.maxMs} ms`);
    for (const b of bugs)
      console.log(`  BUG #${b.index} ${b.verdict} (${b.what}) at ${b.stage ?? '?'}: ${b.code ?? ''} ${(b.message ?? '').slice(0, 300)}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const fingerprint = await environmentFingerprint({});
const commit = gitCommitOf(fingerprint);
const record = {
  kind: 'mutants',
  commit,
  seed,
  countPerFormat: count,
  wallS: (Date.now() - t0) / 1000,
  fingerprintId: fingerprint.fingerprintId,
  device: fingerprint,
  formats: perFormat,
};
const out = resolve(a.output ?? `bench/results/mutants-${new Date().toISOString().replace(/[:.]/g, '-')}-${commit}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${out}`);
const numBugs = Object.values(perFormat).reduce((s, f) => s + f.bugs.length, 0);
process.exit(numBugs === 0 ? 0 : 1);
