// llama.cpp tokenizer vectors through our ModelTokenizer: Llama 3 (llama-bpe) and Qwen3 (qwen2),
// plus BOS handling, special ids and token bytes on the real vocabularies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import { readVocabVectors, sharedPath, skipUnlessShared } from './shared-models.js';

const cache = new Map<string, ModelTokenizer>();
function tok(dir: string): ModelTokenizer {
  let t = cache.get(dir);
  if (!t) {
    t = loadTokenizer(dirname(sharedPath(`${dir}/tokenizer.json`)));
    cache.set(dir, t);
  }
  return t;
}

for (const [dir, vectors] of [
  ['llama3-tokenizer', 'ggml-vocab-llama-bpe.gguf'],
  ['qwen3-tokenizer', 'ggml-vocab-qwen2.gguf'],
] as const) {
  test(`${dir}: all llama.cpp ${vectors} vectors`, {
    skip: skipUnlessShared(`${dir}/tokenizer.json`, `tokenizer-test-vectors/${vectors}.out`),
  }, async () => {
    const t = tok(dir);
    const cases = readVocabVectors(vectors);
    assert.equal(cases.length, 46);
    for (const { text, ids } of cases) {
      assert.deepEqual(await t.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
      // Byte-level BPE is lossless: the token bytes concatenate back to the text.
      const bytes = Buffer.concat(ids.map((id) => t.tokenBytes(id)));
      // Qwen's NFC normalizer runs first, so compare with the normalized text there.
      assert.equal(bytes.toString('utf8'), dir.startsWith('qwen') ? text.normalize('NFC') : text, JSON.stringify(text));
    }
  });
}

test('llama3: BOS prepended once, never doubled; special ids; vocab size', {
  skip: skipUnlessShared('llama3-tokenizer/tokenizer.json'),
}, async () => {
  const t = tok('llama3-tokenizer');
  assert.equal(t.vocabSize, 128256);
  assert.equal(t.bosTokenId, 128000);
  assert.equal(t.eosTokenId, 128001);
  assert.equal(t.addBos, true);
  assert.deepEqual(await t.encode('Hello world'), [128000, 9906, 1917]);
  assert.deepEqual(await t.encode('<|begin_of_text|>Hello world'), [128000, 9906, 1917]);
  assert.deepEqual(await t.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  assert.ok(t.isSpecial(128009));
  assert.equal(t.tokenId('<|eot_id|>'), 128009);
  assert.equal(Buffer.from(t.tokenBytes(128009)).toString(), '<|eot_id|>');
  assert.equal(await t.decode([128000, 9906, 1917]), 'Hello world');
  assert.equal(await t.decode([128000, 9906], { skipSpecialTokens: false }), '<|begin_of_text|>Hello');
  assert.equal(t.tokenBytes(10 ** 7).length, 0);
});

test('qwen3: no BOS, eos <|im_end|>, chat specials', { skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json') }, async () => {
  const t = tok('qwen3-tokenizer');
  assert.equal(t.bosTokenId, null);
  assert.equal(t.addBos, false);
  assert.equal(t.eosTokenId, 151645);
  assert.equal(t.vocabSize, 151669);
  assert.deepEqual(await t.encode('<|im_start|>user\nhi<|im_end|>'), [151644, 872, 198, 6023, 151645]);
  assert.ok(t.isSpecial(151644));
});
