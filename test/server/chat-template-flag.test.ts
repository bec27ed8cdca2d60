// serve --chat-template on the real engine: a tiny random model whose tokenizer_config.json has no chat
// template answers chat requests with a 400 (chat_template_missing) that names --chat-template; the
// same model opened with the built-in 'plain' template answers, with the prompt that template renders.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { resolveChatTemplate } from '../../src/model/builtin-chat-templates.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'tm-tplflag-'));
const device = cpuAddonAvailable().available ? 'cpu' : 'reference';
const live: { stack: ModelStack; server: TokenmillServer; client: OpenAI }[] = [];

async function start(chatTemplate?: string): Promise<{ stack: ModelStack; client: OpenAI }> {
  const stack = await openModelStack({
    dir,
    modelId: 'tiny',
    device,
    kvCacheBytes: 2 << 20,
    ...(chatTemplate !== undefined ? { chatTemplate } : {}),
  });
  const server = await createServer({ engine: stack.engine, frontend: stack.frontend });
  const { url } = await server.listen({ port: 0 });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
  live.push({ stack, server, client });
  return { stack, client };
}

before(() => {
  writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 4 });
  const cfgPath = join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  delete cfg.chat_template;
  writeFileSync(cfgPath, JSON.stringify(cfg));
});
after(async () => {
  for (const l of live) {
    await l.server.close();
    await l.stack.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

test('no template: chat is a 400 naming --chat-template; completions still work', async () => {
  const { client } = await start();
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.code, 'chat_template_missing');
      assert.match(e.message, /--chat-template FILE\|NAME/);
      return true;
    },
  );
  const c = await client.completions.create({ model: 'tiny', prompt: 'hi', max_tokens: 2, temperature: 0 });
  assert.equal(c.choices.length, 1);
});

test("--chat-template plain: chat renders 'user: ...\\nassistant:'", async () => {
  const { stack, client } = await start(resolveChatTemplate('plain').template);
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi there' }],
    max_tokens: 2,
    temperature: 0,
  });
  const expected = await stack.frontend.encode('user: hi there\nassistant:', { addSpecialTokens: false });
  assert.equal(r.usage!.prompt_tokens, expected.length);
  assert.ok(r.choices[0]!.message.content !== undefined);
});
