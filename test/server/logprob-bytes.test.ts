// logprobs[].bytes carries a token's real bytes, also when the token is part of a UTF-8 character
// (byte-level BPE byte tokens, SentencePiece <0xNN> byte fallback): never the bytes of U+FFFD that the
// token's text shows. Real engine, synthetic byte-level tokenizer (byte b is token 4 + b).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { importTokenizerDir } from '../../src/model/convert/tokenizer-import.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { TokenizerFrontend } from '../../src/server/model-frontend.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const dir = mkdtempSync(join(tmpdir(), 'tm-lpbytes-'));
let stack: ModelStack;
let server: TokenmillServer;
let client: OpenAI;

before(async () => {
  writeRandomModel(join(dir, 'm'), MODEL_PRESETS['tiny-llama']!.config, { seed: 6 });
  stack = await openModelStack({
    dir: join(dir, 'm'),
    modelId: 'tiny',
    device: cpuAddonAvailable().available ? 'cpu' : 'reference',
    kvCacheBytes: 2 << 20,
  });
  server = await createServer({ engine: stack.engine, frontend: stack.frontend });
  client = new OpenAI({ baseURL: `${(await server.listen({ port: 0 })).url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('chat logprobs: a lone UTF-8 lead byte token has bytes [0xE2], not those of U+FFFD', async () => {
  const lead = 4 + 0xe2; // first byte of "€" (E2 82 AC)
  const cont = 4 + 0x82;
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
    temperature: 0,
    logprobs: true,
    top_logprobs: 2,
    logit_bias: { [String(lead)]: 100, [String(cont)]: 50 },
  });
  const content = r.choices[0]!.logprobs!.content!;
  assert.equal(content.length, 2);
  assert.deepEqual(
    content.map((c) => c.bytes),
    [[0xe2], [0xe2]],
  );
  assert.equal(content[0]!.token, '\ufffd', 'the text of a partial character is U+FFFD; its bytes are not');
  // The top alternatives (of the unbiased distribution) carry their own bytes too.
  const tops = content[0]!.top_logprobs;
  assert.equal(tops.length, 2);
  for (const t of tops) if (!t.token.includes('\ufffd')) assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
  // Streaming reports the same bytes.
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
    temperature: 0,
    logprobs: true,
    stream: true,
    logit_bias: { [String(lead)]: 100, [String(cont)]: 50 },
  });
  const streamed: number[][] = [];
  for await (const c of stream) for (const lp of c.choices[0]?.logprobs?.content ?? []) streamed.push(lp.bytes!);
  assert.deepEqual(streamed, [[0xe2], [0xe2]]);
});

test('SentencePiece byte-fallback tokens (<0xE2> in the Llama 2 vocabulary) report their byte', {
  skip: skipUnlessShared('llama2-tokenizer/tokenizer.bin'),
}, async () => {
  const out = join(dir, 'l2tok');
  importTokenizerDir(sharedPath('llama2-tokenizer'), out);
  const tok = loadTokenizer(out);
  const f = new TokenizerFrontend(tok, { eosTokenIds: [2], vocabSize: tok.vocabSize });
  try {
    const id = tok.tokenId('<0xE2>')!;
    assert.deepEqual(await f.tokenBytes(id), [0xe2]);
    assert.equal(await f.tokenText(id), '\ufffd');
    assert.deepEqual(await f.tokenBytes(tok.tokenId('▁Hello')!), [...Buffer.from(' Hello')]);
  } finally {
    await f.close();
  }
});
