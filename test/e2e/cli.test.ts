// CLI end to end on real processes: generate on a seeded tiny random model (same seed, same text;
// --chat, --stop), convert llama2c / gguf + greedy generate on stories260K (the reference text, byte for
// byte), doctor --json, --version. Uses the CPU backend when its addon is built, else the reference.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomModel } from '../../src/model/random-model.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { runCli, SHARED_MODELS, skipUnlessShared, STACK_LINE, testDevice } from './cli-helpers.js';

let root = '';
let model = '';
/** The same tiny shape with a long context, so a run can outlast a signal on any backend. */
let longModel = '';
const device = testDevice();

before(() => {
  root = mkdtempSync(join(tmpdir(), 'tokenmill-cli-'));
  model = join(root, 'tiny-llama');
  writeRandomModel(model, MODEL_PRESETS['tiny-llama']!.config, { seed: 7 });
  longModel = join(root, 'tiny-llama-long');
  writeRandomModel(longModel, { ...MODEL_PRESETS['tiny-llama']!.config, max_position_embeddings: 8192 }, { seed: 7 });
});

after(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

const SUMMARY = /prompt tokens: (\d+), generated tokens: (\d+) \(finish: (\w+)\), prefill: [\d.]+ tok\/s, decode: [\d.]+ tok\/s/;

test('generate on a seeded random model: same seed, same text; summary on stderr', async () => {
  const args = (seed: number, ...extra: string[]) => [
    'generate',
    '--model',
    model,
    '--prompt',
    'Hello there',
    '--max-tokens',
    '24',
    '--ignore-eos',
    '--temperature',
    '0.9',
    '--seed',
    String(seed),
    '--device',
    device,
    ...extra,
  ];
  const promptFile = join(root, 'prompt.txt');
  writeFileSync(promptFile, 'Hello there');
  const fromFile = args(11).map((x) => (x === '--prompt' ? '--prompt-file' : x === 'Hello there' ? promptFile : x));
  const [a, b, c, chat, file] = await Promise.all([
    runCli(args(11)),
    runCli(args(11)),
    runCli(args(12)),
    runCli(
      args(
        11,
        '--chat',
        '--system',
        'Be brief.',
        '--top-k',
        '40',
        '--top-p',
        '0.9',
        '--min-p',
        '0.01',
        '--repetition-penalty',
        '1.1',
        '--presence-penalty',
        '0.5',
        '--frequency-penalty',
        '0.2',
      ),
    ),
    runCli(fromFile),
  ]);
  for (const r of [a, b, c, chat, file]) assert.equal(r.code, 0, r.stderr);
  assert.ok(a.stdout.length > 0, 'some text');
  assert.equal(a.stdout, b.stdout, 'same seed, same text');
  assert.equal(file.stdout, a.stdout, '--prompt-file reads the same prompt');
  assert.notEqual(a.stdout, c.stdout, 'another seed, other text');
  const m = SUMMARY.exec(a.stderr);
  assert.ok(m, `summary line in stderr:\n${a.stderr}`);
  assert.equal(m[2], '24');
  assert.equal(m[3], 'length');
  const mc = SUMMARY.exec(chat.stderr);
  assert.ok(mc && Number(mc[1]) > Number(m[1]), 'the chat template adds prompt tokens');
});

test('generate --stop cuts the text before the stop string', async () => {
  const base = [
    'generate',
    '--model',
    model,
    '--prompt',
    'abc',
    '--max-tokens',
    '40',
    '--ignore-eos',
    '--temperature',
    '0',
    '--device',
    device,
  ];
  const full = await runCli(base);
  assert.equal(full.code, 0, full.stderr);
  // Pick a stop string from the middle of the greedy text; the stopped run must be its prefix.
  const text = full.stdout;
  assert.ok(text.length >= 6, `greedy text too short: ${JSON.stringify(text)}`);
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
  const cut = await runCli([...base, '--stop', stop, '--stop', 'never-appears']);
  assert.equal(cut.code, 0, cut.stderr);
  assert.equal(cut.stdout, text.slice(0, text.indexOf(stop)));
  assert.match(cut.stderr, /finish: stop/);
});

test('Ctrl-C (SIGINT) stops generation after the current step: summary with finish abort, exit 130', async () => {
  let sent = false;
  const r = await runCli(
    ['generate', '--model', longModel, '--prompt', 'Hi', '--max-tokens', '8000', '--ignore-eos', '--temperature', '0', '--device', device],
    {
      onStdout: (out, child) => {
        if (!sent && out.length > 0) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    },
  );
  assert.ok(sent, 'some text before the signal');
  assert.equal(r.code, 130, r.stderr);
  const m = SUMMARY.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(m[3], 'abort');
  assert.ok(Number(m[2]) < 8000);
});

test('convert llama2c and gguf, then greedy generate on stories260K: the reference text', {
  skip: skipUnlessShared(
    'stories260K/stories260K.bin',
    'stories260K/tok512.bin',
    'stories260K/stories260K.gguf',
    'stories260K/reference_greedy.json',
  ),
}, async () => {
  const src = join(SHARED_MODELS, 'stories260K');
  const fromBin = join(root, 'stories260K-llama2c');
  const fromGguf = join(root, 'stories260K-gguf');
  const conv = await Promise.all([
    runCli(['convert', 'llama2c', join(src, 'stories260K.bin'), join(src, 'tok512.bin'), fromBin]),
    runCli(['convert', 'gguf', join(src, 'stories260K.gguf'), fromGguf]),
  ]);
  for (const r of conv) assert.equal(r.code, 0, r.stderr);
  for (const dir of [fromBin, fromGguf]) assert.ok(existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json')), dir);
  const ref = JSON.parse(readFileSync(join(src, 'reference_greedy.json'), 'utf8')) as { text: string };
  const gen = (dir: string, n: number) =>
    runCli(['generate', '--model', dir, '--prompt', '', '--temperature', '0', '--max-tokens', String(n), '--device', device]);
  const [bin, gguf] = await Promise.all([gen(fromBin, 200), gen(fromGguf, 40)]);
  for (const r of [bin, gguf]) {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 100, 'a story');
    assert.ok(ref.text.startsWith(r.stdout), `greedy text differs from the reference:\n${r.stdout}\n---\n${ref.text}`);
  }
  assert.equal(bin.stdout, ref.text, 'all 200 reference tokens');
});

test('convert errors: a missing file and a malformed checkpoint are typed', async () => {
  const junk = join(root, 'junk.bin');
  await import('node:fs').then((fs) => fs.writeFileSync(junk, Buffer.alloc(100, 7)));
  const [missing, malformed] = await Promise.all([
    runCli(['convert', 'llama2c', join(root, 'absent.bin'), join(root, 'absent-tok.bin'), join(root, 'out1')]),
    runCli(['convert', 'llama2c', junk, junk, join(root, 'out2')]),
  ]);
  assert.match(missing.stderr, /^error \[file_not_found\]: /m);
  assert.equal(missing.code, 2);
  assert.match(malformed.stderr, /^error \[llama2c_invalid\]: /m);
  assert.equal(malformed.code, 2);
  assert.doesNotMatch(missing.stderr + malformed.stderr, STACK_LINE);
});

test('doctor --json, --version, help', async () => {
  const [doc, ver, help, bare] = await Promise.all([
    runCli(['doctor', '--json']),
    runCli(['--version']),
    runCli(['help', 'generate']),
    runCli([]),
  ]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--repetition-penalty/);
  assert.equal(bare.code, 2, 'no subcommand is a usage error');
  assert.match(bare.stderr, /generate/);
  assert.equal(doc.code, 0, doc.stderr);
  const report = JSON.parse(doc.stdout) as Record<string, unknown> & {
    cpuAddon: { available: boolean };
    cuda: { available: boolean };
    auto: { reason: string };
  };
  for (const key of ['version', 'node', 'cpu', 'cpuAddon', 'cuda', 'auto']) assert.ok(key in report, key);
  assert.equal(typeof report.cpuAddon.available, 'boolean');
  assert.ok(report.auto.reason.length > 0);
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(ver.stdout.trim(), pkg.version);
  assert.equal(ver.code, 0);
});
