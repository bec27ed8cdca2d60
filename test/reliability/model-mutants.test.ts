// Corrupted model files: 50 seeded mutants per format (safetensors, config.json, tokenizer.json,
// tokenizer_config.json, GGUF, llama2.c), each opened in a child process the way `serve` opens a
// model. Every one must load and generate a token, or fail with a typed error naming the mutated
// file (a template that loops or explodes: a typed per-request error); never crash, hang or balloon.
// The long run (500 per format): bench/soak/mutants.ts --count 500.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FORMATS, writeBases } from './mutation/formats.js';
import { BUG_VERDICTS, runMutants, tally } from './mutation/run-mutants.js';

const COUNT = 50;
const SEED = 17;
const work = mkdtempSync(join(tmpdir(), 'tm-mutants-'));
after(() => rmSync(work, { recursive: true, force: true }));
const bases = writeBases(join(work, 'bases'));

for (const format of FORMATS) {
  test(`${COUNT} ${format} mutants: loaded or a typed error naming the file`, { timeout: 300_000 }, async () => {
    const results = await runMutants({ bases, format, count: COUNT, seed: SEED, workDir: work });
    const bugs = results.filter((r) => BUG_VERDICTS.includes(r.verdict));
    const t = tally(results);
    assert.equal(results.length, COUNT);
    assert.deepEqual(
      bugs.map((b) => `#${b.index} ${b.verdict} (${b.what}) at ${b.stage ?? '?'}: ${b.code ?? ''} ${(b.message ?? '').slice(0, 400)}`),
      [],
      JSON.stringify(t),
    );
    // The mutator must reach past the first check: some mutants are benign and load.
    assert.ok((t.typed ?? 0) > 0, JSON.stringify(t));
  });
}
