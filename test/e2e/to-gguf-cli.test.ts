// `tokenmill convert to-gguf` end to end: a tiny random model exported with --dtype f16 reads back
// as a llama GGUF with F16 matrices, --type q4_0 writes Q4_0 blocks (Q8_0 classifier) and prints the
// type counts; usage errors (bad --dtype, sliding-window model) exit 2.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFile } from '../../src/model/convert/gguf.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { runCli } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'tm-to-gguf-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('convert to-gguf --dtype f16, and its usage errors', async () => {
  const dir = join(work, 'tiny');
  const mistral = join(work, 'mistral');
  writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 4 });
  writeRandomModel(mistral, MODEL_PRESETS['tiny-mistral']!.config, { seed: 4 });
  const out = join(work, 'tiny.gguf');
  const [ok, badDtype, badArch, q4] = await Promise.all([
    runCli(['convert', 'to-gguf', dir, out, '--dtype', 'f16']),
    runCli(['convert', 'to-gguf', dir, join(work, 'x.gguf'), '--dtype', 'q4_0']),
    runCli(['convert', 'to-gguf', mistral, join(work, 'y.gguf')]),
    runCli(['convert', 'to-gguf', dir, join(work, 'q4.gguf'), '--type', 'q4_0']),
  ]);
  assert.equal(q4.code, 0, q4.stderr);
  assert.match(q4.stderr, /tensor types: .*Q4_0 x\d+/);
  const gq = readGgufFile(join(work, 'q4.gguf'));
  assert.equal(gq.metadata.get('general.file_type'), 2);
  assert.equal(gq.tensors.get('blk.1.ffn_down.weight')!.typeName, 'Q4_0');
  // generate runs the quantized file as it is (tokenizer from its metadata).
  const gen = await runCli([
    'generate',
    '--model',
    join(work, 'q4.gguf'),
    '--prompt',
    'Hello',
    '--max-tokens',
    '4',
    '--temperature',
    '0',
    '--device',
    'cpu',
  ]);
  assert.equal(gen.code, 0, gen.stderr);
  assert.match(gen.stderr, /LlamaForCausalLM from .*q4\.gguf/);
  assert.match(gen.stderr, /generated tokens: 4/);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /converted HF \(F16, tokenizer gpt2\) to GGUF .* \(20 tensors, 2 layers, D=64, V=512\)/);
  const g = readGgufFile(out);
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.equal(g.metadata.get('general.file_type'), 1);
  assert.equal(g.tensors.get('blk.1.ffn_down.weight')!.typeName, 'F16');
  assert.equal(g.tensors.get('blk.1.ffn_norm.weight')!.typeName, 'F32');
  assert.equal(badDtype.code, 2);
  assert.match(badDtype.stderr, /error \[invalid_argument\]/);
  assert.equal(badArch.code, 2);
  assert.match(badArch.stderr, /error \[unsupported_architecture\]: .*sliding-window/);
});
