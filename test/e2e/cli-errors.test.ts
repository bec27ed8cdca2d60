// CLI error handling end to end: each broken model directory or bad argument prints one line
// `error [code]: ...` with its own typed code, exits non-zero (2 for user errors), shows no stack
// trace unless --debug (and one with it). The fixtures are corrupted copies of a seeded tiny model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { writeRandomModel } from '../../src/model/random-model.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { runCli, STACK_LINE } from './cli-helpers.js';

let root = '';

interface Header {
  [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>;
}

function readSt(file: string): { header: Header; data: Buffer } {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Header, data: buf.subarray(8 + len) };
}

function writeSt(file: string, header: Header, data: Buffer): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, data]));
}

/** A copy of the good model with `mutate` applied to it. */
function variant(name: string, mutate: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(join(root, 'good'), dir, { recursive: true });
  mutate(dir);
  return dir;
}

const cases: { name: string; code: string; dir: () => string }[] = [];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'tokenmill-cli-errors-'));
  writeRandomModel(join(root, 'good'), MODEL_PRESETS['tiny-llama']!.config, { seed: 1 });
  const st = (dir: string) => join(dir, 'model.safetensors');
  const made: Record<string, string> = {
    truncated: variant('truncated', (d) => {
      const buf = readFileSync(st(d));
      writeFileSync(st(d), buf.subarray(0, buf.length - 1000));
    }),
    oversized: variant('oversized', (d) => {
      const buf = readFileSync(st(d));
      buf.writeBigUInt64LE(1n << 40n, 0);
      writeFileSync(st(d), buf);
    }),
    overlap: variant('overlap', (d) => {
      const { header, data } = readSt(st(d));
      const a = header['model.layers.0.self_attn.q_proj.weight'] as { data_offsets: [number, number] };
      const b = header['model.layers.1.self_attn.q_proj.weight'] as { data_offsets: [number, number] };
      b.data_offsets = [...a.data_offsets];
      writeSt(st(d), header, data);
    }),
    dtype: variant('dtype', (d) => {
      const { header, data } = readSt(st(d));
      (header['model.norm.weight'] as { dtype: string }).dtype = 'F64';
      writeSt(st(d), header, data);
    }),
    missingField: variant('missing-field', (d) => {
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
      delete cfg.hidden_size;
      writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    }),
    unknownArch: variant('unknown-arch', (d) => {
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
      cfg.architectures = ['GPT2LMHeadModel'];
      cfg.model_type = 'gpt2';
      writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    }),
  };
  cases.push(
    { name: 'truncated safetensors', code: 'safetensors_truncated', dir: () => made.truncated! },
    { name: 'oversized header', code: 'safetensors_header_too_large', dir: () => made.oversized! },
    { name: 'overlapping offsets', code: 'safetensors_overlap', dir: () => made.overlap! },
    { name: 'wrong dtype', code: 'safetensors_bad_dtype', dir: () => made.dtype! },
    { name: 'missing config field', code: 'config_missing_field', dir: () => made.missingField! },
    { name: 'unknown architecture', code: 'unsupported_architecture', dir: () => made.unknownArch! },
    { name: 'missing model directory', code: 'model_not_found', dir: () => join(root, 'nope') },
  );
});

after(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

function assertTypedError(r: { code: number | null; stderr: string; stdout: string }, code: string, debug: boolean, label: string): void {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('error ['));
  assert.equal(lines.length, 1, `${label}: one error line expected in stderr:\n${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`error [${code}]: `), `${label}: expected code ${code}, got: ${lines[0]}`);
  assert.equal(r.code, 2, `${label}: exit code`);
  assert.equal(r.stdout, '', `${label}: nothing on stdout`);
  if (debug) assert.match(r.stderr, STACK_LINE, `${label}: --debug shows a stack`);
  else assert.doesNotMatch(r.stderr, STACK_LINE, `${label}: no stack without --debug:\n${r.stderr}`);
}

test('broken model directories: each prints its own typed error, exit 2, stack only with --debug', async () => {
  // Every case without --debug; two representative ones (a file error, a config error) with it.
  const runs = cases.flatMap((c) =>
    (c.code === 'safetensors_overlap' || c.code === 'unsupported_architecture' ? [false, true] : [false]).map(async (debug) => {
      const args = ['generate', '--model', c.dir(), '--prompt', 'hi', '--device', 'reference', ...(debug ? ['--debug'] : [])];
      assertTypedError(await runCli(args), c.code, debug, `${c.name}${debug ? ' (--debug)' : ''}`);
    }),
  );
  await Promise.all(runs);
});

test('bad arguments are invalid_argument before anything loads', async () => {
  const model = join(root, 'good');
  const bad: [string[], RegExp][] = [
    [['generate', '--model', model, '--prompt', 'x', '--temperature', 'hot'], /--temperature/],
    [['generate', '--model', model, '--prompt', 'x', '--max-tokens', '0'], /--max-tokens/],
    [['generate', '--model', model, '--prompt', 'x', '--top-p', '1.5'], /--top-p/],
    [['generate', '--model', model, '--prompt', 'x', '--device', 'tpu'], /--device/],
    [['generate', '--model', model, '--prompt', 'x', '--frobnicate'], /unknown option/],
    [['generate', '--prompt', 'x'], /--model/],
    [['generate', '--model', model], /--prompt/],
    [['generate', '--model', model, '--prompt', 'x', '--system', 'be brief'], /--chat/],
    [['bogus-command'], /unknown command/],
    [['serve', '--port', '99999'], /'99999' is not a port: expected an integer in 0-65535/],
    [['serve', '--port', '-1'], /is not a port: expected an integer in 0-65535/],
    [['serve', '--port', '80.5'], /is not a port/],
  ];
  const results = await Promise.all(bad.map(([args]) => runCli(args)));
  results.forEach((r, i) => {
    const [args, re] = bad[i]!;
    assertTypedError(r, 'invalid_argument', false, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  });
});

test('serve on a busy port: port_in_use ("port N is in use") before the model loads', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  try {
    // The model path does not exist: an error about the port (not model_not_found) proves the check runs first.
    const r = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--model', join(root, 'no-such-model')]);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('error ['));
    assert.deepEqual(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^error \\[port_in_use\\]: port ${port} is in use on 127\\.0\\.0\\.1`));
    assert.equal(r.code, 1, 'an environment failure, exit 1');
    assert.doesNotMatch(r.stderr, STACK_LINE);
  } finally {
    await new Promise<void>((r) => taken.close(() => r()));
  }
});
