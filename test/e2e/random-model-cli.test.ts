// `tokenmill random-model` end to end: a Llama-2-shaped random model with the real Llama 2 vocabulary
// (llama2.c tokenizer.bin, converted) and the built-in llama2 chat template generates as a chat; a
// config.json with a larger vocab_size is kept (padded rows); a bad combination of flags is exit code 2;
// generate --chat-template NAME serves a model that has no template.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_CHAT_TEMPLATES } from '../../src/model/builtin-chat-templates.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { runCli, SHARED_MODELS, skipUnlessShared, testDevice } from './cli-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'tm-random-model-'));
after(() => rmSync(root, { recursive: true, force: true }));

const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

test('random-model --preset with the Llama 2 tokenizer and --chat-template llama2, then generate --chat', {
  skip: skipUnlessShared('llama2-tokenizer/tokenizer.bin'),
}, async () => {
  const out = join(root, 'l2');
  const r = await runCli([
    'random-model',
    out,
    '--preset',
    'tiny-llama',
    '--tokenizer',
    join(SHARED_MODELS, 'llama2-tokenizer'),
    '--chat-template',
    'llama2',
    '--seed',
    '5',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /V=32000/);
  assert.equal(json(join(out, 'config.json')).vocab_size, 32000);
  assert.deepEqual(json(join(out, 'generation_config.json')).eos_token_id, [2]);
  assert.equal(json(join(out, 'generation_config.json')).bos_token_id, 1);
  assert.equal(json(join(out, 'tokenizer_config.json')).chat_template, BUILTIN_CHAT_TEMPLATES.llama2);
  const g = await runCli([
    'generate',
    '--model',
    out,
    '--chat',
    '--prompt',
    'Hello',
    '--max-tokens',
    '3',
    '--temperature',
    '0',
    '--device',
    testDevice(),
  ]);
  assert.equal(g.code, 0, g.stderr);
});

test('random-model --config keeps a padded vocab_size; flag mistakes are exit code 2', {
  skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
}, async () => {
  const cfgPath = join(root, 'config.json');
  writeFileSync(cfgPath, JSON.stringify({ ...MODEL_PRESETS['tiny-qwen3']!.config, vocab_size: 151936, num_hidden_layers: 1 }));
  const out = join(root, 'q');
  const [ok, both, small] = await Promise.all([
    runCli(['random-model', out, '--config', cfgPath, '--tokenizer', join(SHARED_MODELS, 'qwen3-tokenizer'), '--dtype', 'bf16']),
    runCli(['random-model', join(root, 'x'), '--preset', 'tiny-llama', '--config', cfgPath]),
    runCli([
      'random-model',
      join(root, 'y'),
      '--preset',
      'tiny-qwen3',
      '--tokenizer',
      join(SHARED_MODELS, 'qwen3-tokenizer'),
      '--vocab-size',
      '1000',
    ]),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(json(join(out, 'config.json')).vocab_size, 151936);
  assert.deepEqual(json(join(out, 'generation_config.json')).eos_token_id, [151645, 151643]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /exactly one of --preset NAME or --config FILE/);
  assert.equal(small.code, 2);
  assert.match(small.stderr, /smaller than the tokenizer's 151669 ids/);
});

test('generate --chat-template on a model without a template; the errors say what to do', async () => {
  const out = join(root, 'no-template');
  writeRandomModel(out, MODEL_PRESETS['tiny-llama']!.config, { seed: 2 });
  const cfg = json(join(out, 'tokenizer_config.json'));
  delete cfg.chat_template;
  writeFileSync(join(out, 'tokenizer_config.json'), JSON.stringify(cfg));
  const base = ['generate', '--model', out, '--prompt', 'hi', '--max-tokens', '2', '--temperature', '0', '--device', testDevice()];
  const [missing, plain, noChat] = await Promise.all([
    runCli([...base, '--chat']),
    runCli([...base, '--chat', '--chat-template', 'plain']),
    runCli([...base, '--chat-template', 'plain']),
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /chat_template_missing.*pass --chat-template FILE\|NAME/);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stderr, /prompt tokens: \d+, generated tokens: 2/);
  assert.equal(noChat.code, 2);
  assert.match(noChat.stderr, /--chat-template needs --chat/);
});
