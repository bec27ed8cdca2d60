// The text-per-token bound that lets the server refuse a too-long text before tokenizing it: only a
// guarantee counts, so every tokenizer at hand must give at least ceil(length / bound) tokens on
// seeded adversarial texts (space runs, repeated punctuation, CJK, emoji, long words), and shapes
// that can collapse text get no bound at all.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSyntheticTokenizer } from '../../src/model/convert/synthetic-tokenizer.js';
import { Xoshiro128 } from '../../src/model/prng.js';
import { textShrinkBound } from '../../src/model/token-bound.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import { TokenizerFrontend } from '../../src/server/model-frontend.js';
import { TokenmillError } from '../../src/util/errors.js';
import { sharedPath, skipUnlessShared } from './shared-models.js';

const work = mkdtempSync(join(tmpdir(), 'tm-tokbound-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('shapes: byte-level BPE 1, NFC 3, anything that can drop text none', () => {
  const bpe = { type: 'BPE', unk_token: null };
  const bl = { type: 'ByteLevel' };
  assert.equal(textShrinkBound({ normalizer: null, pre_tokenizer: bl, model: bpe }), 1);
  assert.equal(textShrinkBound({ normalizer: { type: 'NFC' }, pre_tokenizer: bl, model: bpe }), 3);
  // Llama 2 (SentencePiece BPE): ' ' -> '\u2581' only grows the text; byte fallback, so no fused unknowns.
  const spm = {
    type: 'Sequence',
    normalizers: [
      { type: 'Prepend', prepend: '\u2581' },
      { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    ],
  };
  assert.equal(
    textShrinkBound({
      normalizer: spm,
      pre_tokenizer: null,
      model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true, byte_fallback: true },
    }),
    1,
  );
  assert.equal(
    textShrinkBound({ normalizer: null, pre_tokenizer: null, model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true } }),
    null,
  );
  assert.equal(textShrinkBound({ normalizer: { type: 'StripAccents' }, pre_tokenizer: bl, model: bpe }), null);
  assert.equal(
    textShrinkBound({ normalizer: { type: 'Replace', pattern: { Regex: ' +' }, content: ' ' }, pre_tokenizer: bl, model: bpe }),
    null,
  );
  assert.equal(textShrinkBound({ normalizer: null, pre_tokenizer: { type: 'WhitespaceSplit' }, model: bpe }), null);
  assert.equal(textShrinkBound({ normalizer: null, pre_tokenizer: { type: 'Split', behavior: 'Removed' }, model: bpe }), null);
  assert.equal(textShrinkBound({ normalizer: null, pre_tokenizer: bl, model: { type: 'WordPiece' } }), null);
});

function adversarialTexts(seed: number): string[] {
  const r = new Xoshiro128(seed);
  const pieces = [
    ' ',
    '    ',
    '\n',
    '\t',
    '-',
    '=',
    '.',
    'the',
    'ing',
    'Hello',
    '\u4e2d\u6587',
    '\ud83d\ude00',
    '\u00e9',
    'e\u0301',
    '\u1100\u1161\u11a8',
    '\u212a',
    '<s>',
    '<|im_start|>',
    '0123456789',
    'aaaaaaaaaaaaaaaa',
    '\u2581',
  ];
  const out: string[] = [
    ' '.repeat(5000),
    '='.repeat(3000),
    '\n'.repeat(2000),
    '\ud83d\ude00'.repeat(500),
    'a'.repeat(4000),
    '<|im_start|>'.repeat(300),
  ];
  for (let i = 0; i < 40; i++) {
    let s = '';
    const n = 1 + Math.floor(r.next() * 400);
    const run = pieces[Math.floor(r.next() * pieces.length)]!;
    for (let k = 0; k < n; k++) s += r.next() < 0.5 ? run : pieces[Math.floor(r.next() * pieces.length)]!;
    out.push(s);
  }
  return out;
}

async function assertBoundHolds(tok: ModelTokenizer, name: string): Promise<void> {
  const per = tok.maxUnitsPerToken();
  assert.ok(per !== null && per >= 1, `${name}: a bound`);
  for (const text of adversarialTexts(7)) {
    for (const addSpecialTokens of [false, true]) {
      const ids = await tok.encode(text, { addSpecialTokens });
      assert.ok(
        ids.length >= Math.ceil(text.length / per),
        `${name}: ${ids.length} tokens for ${text.length} units (bound ${per}): ${JSON.stringify(text.slice(0, 40))}`,
      );
    }
  }
}

test('the bound holds on the synthetic tokenizer', async () => {
  const d = join(work, 'syn');
  writeSyntheticTokenizer(d, 512);
  await assertBoundHolds(loadTokenizer(d), 'synthetic');
});

for (const name of ['llama3-tokenizer', 'qwen3-tokenizer']) {
  test(`the bound holds on ${name}`, { skip: skipUnlessShared(`${name}/tokenizer.json`) }, async () => {
    await assertBoundHolds(loadTokenizer(join(sharedPath(`${name}/tokenizer.json`), '..')), name);
  });
}

test('the frontend refuses a text over maxTokens x bound before tokenizing; at the bound it tokenizes', async () => {
  const d = join(work, 'fe');
  writeSyntheticTokenizer(d, 512);
  const tok = loadTokenizer(d);
  const fe = new TokenizerFrontend(tok, { eosTokenIds: [1], vocabSize: 512 });
  try {
    fe.limitTextTokens(64);
    const per = tok.maxUnitsPerToken()!;
    const atBound = 'ab'.repeat(per * 32); // exactly 64 x per units: may or may not fit, but is tokenized
    assert.ok((await fe.encode(atBound)).length > 0);
    await assert.rejects(
      fe.encode(`${atBound}a`),
      (e: unknown) =>
        e instanceof TokenmillError &&
        e.code === 'context_length_exceeded' &&
        /maximum context length is 64 tokens/.test(e.message) &&
        /at least 65 tokens/.test(e.message),
    );
  } finally {
    await fe.close();
  }
});
