// Random-weight models with a real tokenizer (makeTinyModel / writeRandomModel tokenizerDir): a
// Qwen3- and a Llama-3-shaped model with the shared Qwen3 / Llama 3 tokenizers load, render their own
// chat templates, stop on the tokenizer's EOS ids (not the synthetic tokenizer's 3 and 1, which are
// `$` and `"` in these vocabularies), and a chat answer made of quotes is not cut at the first one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import OpenAI from 'openai';
import { renderChat } from '../../src/model/chat-template.js';
import { loadModelConfigs } from '../../src/model/loader.js';
import { makeTinyModel, type TinyModel } from '../../src/model/random-model.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer } from '../../src/server/app.js';
import { openModelStack } from '../../src/server/model-stack.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const CASES = [
  {
    family: 'qwen3',
    preset: 'tiny-qwen3',
    vocab: 151669,
    bos: null,
    eos: [151645, 151643],
    turnEnd: 151645,
    turn: '<|im_start|>user\nSay "hi"<|im_end|>\n<|im_start|>assistant\n',
  },
  {
    family: 'llama3',
    preset: 'tiny-llama3',
    vocab: 128256,
    bos: 128000,
    eos: [128001, 128009],
    turnEnd: 128009,
    turn: '<|start_header_id|>user<|end_header_id|>\n\nSay "hi"<|eot_id|>',
  },
] as const;

const device = cpuAddonAvailable().available ? 'cpu' : 'reference';

for (const c of CASES) {
  describe(`random ${c.family}-shaped model with the real ${c.family} tokenizer`, {
    skip: skipUnlessShared(`${c.family}-tokenizer/tokenizer.json`),
  }, () => {
    let m: TinyModel | undefined;
    let t: ModelTokenizer | undefined;
    const model = (): TinyModel => (m ??= makeTinyModel(sharedPath(`${c.family}-tokenizer`), { preset: c.preset, dtype: 'bf16', seed: 3 }));
    const tokenizer = (): ModelTokenizer => (t ??= loadTokenizer(model().dir));
    after(() => m?.remove());

    it('vocab, bos and eos come from the tokenizer; the chat template renders', async () => {
      const { config, generationConfig } = loadModelConfigs(model().dir);
      assert.equal(config.vocabSize, c.vocab);
      assert.equal(config.bosTokenId, c.bos);
      assert.deepEqual([...config.eosTokenIds], [...c.eos]);
      assert.deepEqual(generationConfig.eosTokenIds, c.eos);
      const tok = tokenizer();
      assert.equal(tok.vocabSize, c.vocab);
      const quote = tok.tokenId('"')!;
      const stops: readonly number[] = config.eosTokenIds;
      assert.ok(!stops.includes(quote), 'the quote token is not a stop token');
      assert.ok(!stops.includes(tok.tokenId('$')!));
      const text = await renderChat(tok, [{ role: 'user', content: 'Say "hi"' }]);
      assert.ok(text.includes(c.turn), text);
      const gen = JSON.parse(readFileSync(`${model().dir}/generation_config.json`, 'utf8')) as { eos_token_id: number[] };
      assert.deepEqual(gen.eos_token_id, c.eos);
    });

    it('served: a chat answer of quotes runs to max_tokens (the quote does not stop it)', async () => {
      const tok = tokenizer();
      const quote = tok.tokenId('"')!;
      const stack = await openModelStack({ dir: model().dir, modelId: 'tiny', device, kvCacheBytes: 4 << 20 });
      const server = await createServer({ engine: stack.engine, frontend: stack.frontend });
      try {
        const { url } = await server.listen({ port: 0 });
        const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
        const r = await client.chat.completions.create({
          model: 'tiny',
          messages: [{ role: 'user', content: 'Say "hi"' }],
          max_tokens: 6,
          temperature: 0,
          logit_bias: { [String(quote)]: 100 },
        });
        assert.equal(r.choices[0]!.finish_reason, 'length');
        assert.equal(r.usage!.completion_tokens, 6);
        assert.equal(r.choices[0]!.message.content, '""""""');
        // Forcing the end-of-turn token ends the answer with finish_reason stop.
        const end = await client.chat.completions.create({
          model: 'tiny',
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 6,
          temperature: 0,
          logit_bias: { [String(c.turnEnd)]: 100 },
        });
        assert.equal(end.choices[0]!.finish_reason, 'stop');
        assert.equal(end.usage!.completion_tokens, 1);
      } finally {
        await server.close();
        await stack.close();
      }
    });
  });
}
