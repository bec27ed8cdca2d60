// `tokenmill doctor --json --model DIR` carries the environment fingerprint (weights and tokenizer
// sha256), and two CLI runs with the same fingerprint and --seed (temperature > 0) print the same text.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { runCli, testDevice } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'tm-fp-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
const dir = join(work, 'tiny');
writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 3 });

interface Doctor {
  fingerprint: { fingerprintId: string; model: { weights: { file: string; sha256: string }[]; tokenizer: { sha256: string } } };
}

test('doctor --json --model: fingerprint with weight and tokenizer hashes; seeded CLI runs repeat exactly', async () => {
  const gen = [
    'generate',
    '--model',
    dir,
    '--prompt',
    'Once upon a time',
    '--max-tokens',
    '20',
    '--temperature',
    '0.8',
    '--seed',
    '42',
    '--ignore-eos',
    '--device',
    testDevice(),
  ];
  const [d1, g1, d2, g2, text] = await Promise.all([
    runCli(['doctor', '--json', '--model', dir]),
    runCli(gen),
    runCli(['doctor', '--json', '--model', dir]),
    runCli(gen),
    runCli(['doctor', '--model', dir]),
  ]);
  for (const r of [d1, g1, d2, g2, text]) assert.equal(r.code, 0, r.stderr);
  const [a, b] = [JSON.parse(d1.stdout) as Doctor, JSON.parse(d2.stdout) as Doctor];
  assert.equal(a.fingerprint.fingerprintId, b.fingerprint.fingerprintId);
  const sha = (f: string): string =>
    createHash('sha256')
      .update(readFileSync(join(dir, f)))
      .digest('hex');
  assert.equal(a.fingerprint.model.weights[0]!.sha256, sha('model.safetensors'));
  assert.equal(a.fingerprint.model.tokenizer.sha256, sha('tokenizer.json'));
  assert.ok(g1.stdout.length > 0);
  assert.equal(g1.stdout, g2.stdout);
  assert.match(text.stdout, new RegExp(`^fingerprint ${a.fingerprint.fingerprintId}$`, 'm'));
  assert.match(text.stdout, /^commit\s+([0-9a-f]{40}|unknown)/m);
});
