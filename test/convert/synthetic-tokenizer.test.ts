// writeSyntheticTokenizer: valid, deterministic, exact vocab size, round-trips text through HF tokenizers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { writeSyntheticTokenizer, SYNTHETIC_MIN_VOCAB } from '../../src/model/convert/synthetic-tokenizer.js';
import { TokenmillError } from '../../src/util/errors.js';

const TEXT = 'Hello world! Once upon a time, Lily played. 😀 中文\n\tend';

test('synthetic tokenizer: exact vocab size, round trip, specials, deterministic', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-syn-'));
  try {
    for (const vocabSize of [SYNTHETIC_MIN_VOCAB, 300, 512, 4096]) {
      const sub = join(dir, String(vocabSize));
      const info = writeSyntheticTokenizer(sub, vocabSize);
      const first = readFileSync(join(sub, 'tokenizer.json'), 'utf8');
      writeSyntheticTokenizer(sub, vocabSize);
      assert.equal(readFileSync(join(sub, 'tokenizer.json'), 'utf8'), first, 'deterministic');
      const tok = Tokenizer.fromFile(join(sub, 'tokenizer.json'));
      assert.equal(tok.getVocabSize(true), vocabSize);
      assert.equal(info.vocabSize, vocabSize);
      const ids = (await tok.encode(TEXT, null, { addSpecialTokens: true })).getIds();
      assert.ok(ids.every((id) => id >= 0 && id < vocabSize));
      assert.equal(await tok.decode(ids, false), TEXT);
      const chat = (await tok.encode('<|im_start|>user\nhi<|im_end|>', null, { addSpecialTokens: false })).getIds();
      assert.equal(chat[0], info.imStartTokenId);
      assert.equal(chat[chat.length - 1], info.imEndTokenId);
      const cfg = JSON.parse(readFileSync(join(sub, 'tokenizer_config.json'), 'utf8'));
      assert.equal(cfg.eos_token, '<|im_end|>');
      assert.match(cfg.chat_template, /im_start/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('synthetic tokenizer: addBosToken prepends <s> through the post-processor', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-syn-'));
  try {
    const info = writeSyntheticTokenizer(dir, 512, { addBosToken: true });
    const tok = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    const ids = (await tok.encode('Lily', null, { addSpecialTokens: true })).getIds();
    assert.equal(ids[0], info.bosTokenId);
    assert.equal((await tok.encode('Lily', null, { addSpecialTokens: false })).getIds()[0] !== info.bosTokenId, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('synthetic tokenizer: too small a vocab is invalid_argument', () => {
  assert.throws(
    () => writeSyntheticTokenizer(join(tmpdir(), 'never'), 100),
    (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument',
  );
});

test('synthetic tokenizer: extra special tokens take the last ids and encode as one token each; eosToken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-syn-'));
  try {
    const extra = ['[INST]', '[/INST]', '[TOOL_CALLS]'];
    const info = writeSyntheticTokenizer(dir, 600, { extraSpecialTokens: extra, eosToken: '</s>' });
    assert.deepEqual(info.eosTokenIds, [1]);
    const tok = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    assert.equal(tok.getVocabSize(true), 600);
    const ids = (await tok.encode('[INST]hi[/INST][TOOL_CALLS][{"a": 1}]', null, { addSpecialTokens: false })).getIds();
    assert.equal(ids[0], 597);
    assert.ok(ids.includes(598) && ids.includes(599));
    assert.equal(await tok.decode(ids, false), '[INST]hi[/INST][TOOL_CALLS][{"a": 1}]');
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(cfg.eos_token, '</s>');
    assert.equal(cfg.added_tokens_decoder['599'].content, '[TOOL_CALLS]');
    const bad = (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument';
    assert.throws(() => writeSyntheticTokenizer(dir, 600, { eosToken: '[nope]' }), bad);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
