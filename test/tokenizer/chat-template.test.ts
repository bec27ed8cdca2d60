// Chat template rendering: Llama 3 and Qwen3 templates from ../shared, named templates, typed
// errors (missing, error, timeout) and recovery after a timed-out render.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { ChatTemplateRenderer, MAX_QUEUED_RENDERS, renderChat, selectChatTemplate } from '../../src/model/chat-template.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { loadTokenizerConfig, parseTokenizerConfig } from '../../src/model/tokenizer-config.js';
import { TokenmillError } from '../../src/util/errors.js';
import { sharedPath, skipUnlessShared } from './shared-models.js';

const renderer = new ChatTemplateRenderer(5000);
after(() => renderer.close());

const isCode = (code: string) => (e: unknown) => e instanceof TokenmillError && e.code === code;
const MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi there ' },
];

test('llama3 template renders the documented prompt', { skip: skipUnlessShared('llama3-tokenizer/tokenizer_config.json') }, async () => {
  const cfg = loadTokenizerConfig(dirname(sharedPath('llama3-tokenizer/tokenizer_config.json')));
  const text = await renderer.render(selectChatTemplate(cfg.chatTemplates), {
    messages: MESSAGES,
    addGenerationPrompt: true,
    bosToken: cfg.bosToken,
    eosToken: cfg.eosToken,
  });
  assert.equal(
    text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
});

test('qwen3 template: generation prompt, enable_thinking=false, assistant history', {
  skip: skipUnlessShared('qwen3-tokenizer/tokenizer_config.json'),
}, async () => {
  const cfg = loadTokenizerConfig(dirname(sharedPath('qwen3-tokenizer/tokenizer_config.json')));
  const tpl = selectChatTemplate(cfg.chatTemplates);
  const base = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n';
  assert.equal(await renderer.render(tpl, { messages: MESSAGES, addGenerationPrompt: true }), base + '<|im_start|>assistant\n');
  assert.equal(
    await renderer.render(tpl, { messages: MESSAGES, addGenerationPrompt: true, extra: { enable_thinking: false } }),
    base + '<|im_start|>assistant\n<think>\n\n</think>\n\n',
  );
  const withReply = [...MESSAGES, { role: 'assistant', content: '<think>\nhmm\n</think>\n\nHello!' }];
  assert.equal(
    await renderer.render(tpl, { messages: withReply, addGenerationPrompt: false }),
    base + '<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello!<|im_end|>\n',
  );
});

test('named templates, missing template', async () => {
  const cfg = parseTokenizerConfig({
    chat_template: [
      { name: 'default', template: 'D{{ messages|length }}' },
      { name: 'tool_use', template: 'T' },
    ],
  });
  assert.equal(await renderer.render(selectChatTemplate(cfg.chatTemplates), { messages: MESSAGES }), 'D2');
  assert.equal(await renderer.render(selectChatTemplate(cfg.chatTemplates, 'tool_use'), { messages: MESSAGES }), 'T');
  assert.throws(() => selectChatTemplate(cfg.chatTemplates, 'rag'), isCode('chat_template_missing'));
  await assert.rejects(renderer.render(selectChatTemplate({}), { messages: MESSAGES }), isCode('chat_template_missing'));
  assert.throws(() => parseTokenizerConfig({ chat_template: 42 }), isCode('tokenizer_invalid'));
});

test('template errors and raise_exception are chat_template_error', async () => {
  await assert.rejects(renderer.render('{% if %}', { messages: [] }), isCode('chat_template_error'));
  await assert.rejects(
    renderer.render("{{ raise_exception('roles must alternate') }}", { messages: [] }),
    (e: unknown) => isCode('chat_template_error')(e) && /roles must alternate/.test((e as Error).message),
  );
  assert.equal(
    await renderer.render('{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}', {
      messages: [],
      bosToken: '<s>',
      eosToken: '</s>',
      addGenerationPrompt: true,
    }),
    '<s>|</s>|true',
  );
});

test('an endless template times out, and the renderer recovers', async () => {
  const endless = '{% for i in range(1000000000) %}{{ i }}{% endfor %}';
  await assert.rejects(renderer.render(endless, { messages: [] }, 200), isCode('chat_template_timeout'));
  assert.equal(await renderer.render('{{ messages[0].content }}', { messages: [{ role: 'user', content: 'still alive' }] }), 'still alive');
});

test('renderChat + encode: llama3 prompt has exactly one BOS either way', {
  skip: skipUnlessShared('llama3-tokenizer/tokenizer.json'),
}, async () => {
  const tok = loadTokenizer(dirname(sharedPath('llama3-tokenizer/tokenizer.json')));
  const prompt = await renderChat(tok, MESSAGES, { renderer });
  assert.ok(prompt.startsWith('<|begin_of_text|><|start_header_id|>system'));
  assert.ok(prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'));
  for (const addSpecialTokens of [false, true]) {
    const ids = await tok.encode(prompt, { addSpecialTokens });
    assert.equal(ids[0], 128000);
    assert.equal(ids.filter((id) => id === 128000).length, 1);
  }
  await assert.rejects(renderChat(tok, MESSAGES, { renderer, templateName: 'tool_use' }), isCode('chat_template_missing'));
  assert.equal(await renderChat(tok, MESSAGES, { renderer, template: '{{ bos_token }}{{ messages|length }}' }), '<|begin_of_text|>2');
});

test('an uncloneable context fails that render only', async () => {
  await assert.rejects(renderer.render('{{ x }}', { messages: [], extra: { x: () => 1 } }), isCode('chat_template_error'));
  assert.equal(await renderer.render('{{ messages|length }}', { messages: [{ role: 'user', content: 'a' }] }), '1');
});

test('a template that builds an impossible string is chat_template_error', async () => {
  const doubling =
    "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}";
  await assert.rejects(renderer.render(doubling, { messages: [] }), isCode('chat_template_error'));
  assert.equal(await renderer.render('ok', { messages: [] }), 'ok');
});

test(`renders waiting for the worker are bounded (${MAX_QUEUED_RENDERS}): the excess is server_overloaded, the rest render`, async () => {
  const burst = MAX_QUEUED_RENDERS + 40;
  const render = (i: number) => renderer.render('{{ messages|length }}', { messages: [{ role: 'user', content: String(i) }] });
  const results = await Promise.allSettled(Array.from({ length: burst }, (_, i) => render(i)));
  const refused = results.filter((r) => r.status === 'rejected');
  assert.ok(
    refused.every((r) => isCode('server_overloaded')(r.reason)),
    String(refused[0]?.reason),
  );
  // One render may already be in the worker, outside the queue.
  assert.ok(refused.length === 40 || refused.length === 39, `${refused.length} refused`);
  assert.ok(results.every((r) => r.status === 'rejected' || r.value === '1'));
  assert.equal(await renderer.render('ok', { messages: [] }), 'ok');
});
