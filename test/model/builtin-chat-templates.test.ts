// --chat-template values: each built-in name renders its family's prompt format exactly; a file and an
// inline template are taken as they are; anything else is invalid_argument naming the built-ins.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BUILTIN_CHAT_TEMPLATES, resolveChatTemplate } from '../../src/model/builtin-chat-templates.js';
import { ChatTemplateRenderer, NO_TEMPLATE_MESSAGE } from '../../src/model/chat-template.js';
import { TokenmillError } from '../../src/util/errors.js';

const renderer = new ChatTemplateRenderer();
const dir = mkdtempSync(join(tmpdir(), 'tm-tpl-'));
after(async () => {
  await renderer.close();
  rmSync(dir, { recursive: true, force: true });
});

const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Bye' },
];

async function render(name: string, bos: string, eos: string): Promise<string> {
  return renderer.render(resolveChatTemplate(name).template, {
    messages: MESSAGES,
    addGenerationPrompt: true,
    bosToken: bos,
    eosToken: eos,
  });
}

test('built-in templates render their formats', async () => {
  assert.deepEqual(Object.keys(BUILTIN_CHAT_TEMPLATES).sort(), ['chatml', 'llama2', 'llama3', 'plain']);
  assert.equal(
    await render('chatml', '', ''),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
      '<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    await render('llama2', '<s>', '</s>'),
    '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]',
  );
  assert.equal(
    await render('llama3', '<|begin_of_text|>', '<|end_of_text|>'),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  assert.equal(await render('plain', '', ''), 'system: Be brief.\nuser: Hi\nassistant: Hello.\nuser: Bye\nassistant:');
  assert.equal(resolveChatTemplate('llama3').source, 'builtin:llama3');
});

test('a file, an inline template, and bad values', () => {
  const f = join(dir, 't.jinja');
  writeFileSync(f, '{{ messages[0].content }}');
  assert.deepEqual(resolveChatTemplate(f), { template: '{{ messages[0].content }}', source: `file:${f}` });
  assert.deepEqual(resolveChatTemplate('{{ messages[0].content }}!'), { template: '{{ messages[0].content }}!', source: 'inline' });
  writeFileSync(join(dir, 'empty.jinja'), ' \n');
  for (const bad of ['chatmll', join(dir, 'absent.jinja'), join(dir, 'empty.jinja'), 'toString', dir]) {
    assert.throws(
      () => resolveChatTemplate(bad),
      (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument' && e.param === '--chat-template',
      bad,
    );
  }
  assert.throws(() => resolveChatTemplate('nope'), /not a file, and not a built-in name \(chatml, llama2, llama3, plain\)/);
  // The 400 for a model without a template names the flag that now exists and its built-in names.
  assert.match(NO_TEMPLATE_MESSAGE, /--chat-template FILE\|NAME/);
  for (const name of Object.keys(BUILTIN_CHAT_TEMPLATES)) assert.ok(NO_TEMPLATE_MESSAGE.includes(name), name);
});
