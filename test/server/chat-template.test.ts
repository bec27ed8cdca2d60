// The real TokenizerFrontend and the real engine (a tiny random Llama over a synthetic 512-token
// vocabulary) behind the server: chat requests render the model's own template (ChatML here), a
// template that never finishes is cut off by the time limit (400 chat_template_timeout), and the
// server keeps serving afterwards.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import OpenAI from 'openai';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { writeSyntheticTokenizer } from '../../src/model/convert/synthetic-tokenizer.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { createServer } from '../../src/server/app.js';
import { TokenizerFrontend } from '../../src/server/model-frontend.js';
import { RecordingEngine } from './real-engine.js';

const EOS = 3; // <|im_end|> in the synthetic vocabulary

async function serveWith(template: string | undefined, timeoutMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tm-tpl-'));
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, vocab_size: 512, eos_token_id: EOS }, { seed: 3, tokenizer: false });
  writeSyntheticTokenizer(dir, 512, template === undefined ? {} : { chatTemplate: template });
  const frontend = new TokenizerFrontend(loadTokenizer(dir), { eosTokenIds: [EOS], vocabSize: 512, templateTimeoutMs: timeoutMs });
  const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 1 }) : createReferenceBackend();
  const { model } = await loadModel(dir, backend);
  const inner = new AsyncEngine({
    modelId: 'tiny',
    model,
    numBlocks: 64,
    eosTokenIds: [EOS],
    detokenizer: frontend.detokenizerFactory(),
    usdPerHour: 1,
  });
  const engine = new RecordingEngine(inner, () => {
    model.dispose();
    backend.dispose();
  });
  const server = await createServer({ engine, frontend });
  const { url } = await server.listen({ port: 0 });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const close = async (): Promise<void> => {
    await server.close(); // shuts the engine down
    await frontend.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { engine, frontend, client, url, close };
}

describe('chat template through the server', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('renders the model template (ChatML) and tokenizes without doubling specials', async () => {
    const s = await serveWith(undefined, 2000);
    closers.push(s.close);
    await s.client.chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello' },
      ],
      max_tokens: 1,
    });
    const ids = s.engine.requests.at(-1)!.promptTokenIds;
    const text = await s.frontend.decode(ids, { skipSpecialTokens: false });
    assert.equal(text, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(ids[0], 2); // <|im_start|>, no BOS added in front of the template's own tokens
  });

  it('a template that runs too long is a 400 chat_template_timeout; the server stays up', async () => {
    const evil = '{% for i in range(100000000) %}{{ i }}{% endfor %}';
    const s = await serveWith(evil, 200);
    closers.push(s.close);
    await assert.rejects(
      s.client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'chat_template_timeout',
    );
    const r = await s.client.completions.create({ model: 'tiny', prompt: 'still alive', max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  });
});
