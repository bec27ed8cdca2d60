// ModelTokenizer on self-made tokenizers (no ../shared needed): typed load errors, BOS rules,
// fallback ids, token bytes, decoder analysis.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeDecoder, loadTokenizer } from '../../src/model/tokenizer.js';
import { writeSyntheticTokenizer } from '../../src/model/convert/synthetic-tokenizer.js';
import { TokenmillError } from '../../src/util/errors.js';

const work = mkdtempSync(join(tmpdir(), 'tm-tok-'));
after(() => rmSync(work, { recursive: true, force: true }));
const invalid = (re: RegExp) => (e: unknown) => e instanceof TokenmillError && e.code === 'tokenizer_invalid' && re.test(e.message);

test('load errors are tokenizer_invalid', () => {
  assert.throws(() => loadTokenizer(join(work, 'nope')), invalid(/cannot read/));
  const d = join(work, 'bad');
  writeSyntheticTokenizer(d, 300);
  writeFileSync(join(d, 'tokenizer.json'), '{not json');
  assert.throws(() => loadTokenizer(d), invalid(/not valid JSON/));
  writeFileSync(join(d, 'tokenizer.json'), '{"model": {"type": "Nope"}}');
  assert.throws(() => loadTokenizer(d), invalid(/cannot be loaded/));
  const e = join(work, 'badbos');
  writeSyntheticTokenizer(e, 300);
  writeFileSync(join(e, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<nope>' }));
  assert.throws(() => loadTokenizer(e), invalid(/bos_token "<nope>" \(set in \S*tokenizer_config\.json\) is not in the vocabulary/));
  writeFileSync(join(e, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: 'yes' }));
  assert.throws(() => loadTokenizer(e), invalid(/add_bos_token must be a boolean/));
});

test('BOS: add_bos_token false (ChatML) vs true, never doubled; AddedToken-dict fields', async () => {
  const d = join(work, 'bos');
  writeSyntheticTokenizer(d, 400);
  const chatml = loadTokenizer(d);
  assert.equal(chatml.addBos, false);
  assert.equal(chatml.bosTokenId, 0);
  assert.equal(chatml.eosTokenId, 3);
  assert.notEqual((await chatml.encode('hi'))[0], 0);
  writeFileSync(
    join(d, 'tokenizer_config.json'),
    JSON.stringify({ add_bos_token: true, bos_token: { content: '<s>' }, eos_token: '</s>' }),
  );
  const withBos = loadTokenizer(d);
  assert.equal((await withBos.encode('hi'))[0], 0);
  assert.equal((await withBos.encode('<s>hi')).filter((id) => id === 0).length, 1);
  assert.deepEqual(await withBos.encode('hi', { addSpecialTokens: false }), await chatml.encode('hi'));
  // Post-processor adds BOS too (addBosToken writes a TemplateProcessing): still exactly one.
  const p = join(work, 'bos-pp');
  writeSyntheticTokenizer(p, 400, { addBosToken: true });
  const pp = loadTokenizer(p);
  assert.equal((await pp.encode('hi')).filter((id) => id === 0).length, 1);
  assert.equal((await pp.encode('<s>hi')).filter((id) => id === 0).length, 1);
});

test('no tokenizer_config.json: BOS/EOS from config.json fallbacks', async () => {
  const d = join(work, 'fallback');
  writeSyntheticTokenizer(d, 300);
  unlinkSync(join(d, 'tokenizer_config.json'));
  const plain = loadTokenizer(d);
  assert.equal(plain.bosTokenId, null);
  assert.equal(plain.addBos, false);
  const fb = loadTokenizer(d, { fallbackBosTokenId: 0, fallbackEosTokenId: 1 });
  assert.equal(fb.bosTokenId, 0);
  assert.equal(fb.eosTokenId, 1);
  assert.equal((await fb.encode('x'))[0], 0);
  assert.deepEqual(fb.chatTemplates, {});
});

test('token bytes, specials, vocab size on a byte-level vocabulary', async () => {
  const d = join(work, 'bytes');
  writeSyntheticTokenizer(d, 512);
  const t = loadTokenizer(d);
  assert.equal(t.vocabSize, 512);
  assert.equal(t.spelling, 'byte_level');
  assert.deepEqual([...t.tokenBytes(4 + 0xf0)], [0xf0], 'raw byte token');
  assert.equal(Buffer.from(t.tokenBytes(2)).toString(), '<|im_start|>');
  assert.ok(t.isSpecial(2) && !t.isSpecial(100));
  const ids = await t.encode('Once upon a time 😀', { addSpecialTokens: false });
  assert.equal(Buffer.concat(ids.map((id) => t.tokenBytes(id))).toString(), 'Once upon a time 😀');
  assert.equal(t.tokenBytes(-1).length, 0);
  assert.equal(t.tokenBytes(100000).length, 0);
  assert.equal(t.tokenString(100000), null);
});

test('analyzeDecoder recognises byte-level, SentencePiece (Strip / Metaspace) and plain decoders', () => {
  assert.deepEqual(analyzeDecoder({ type: 'ByteLevel' }), { spelling: 'byte_level', stripsLeadingSpace: false });
  assert.deepEqual(
    analyzeDecoder({
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    }),
    { spelling: 'sentencepiece', stripsLeadingSpace: true },
  );
  assert.deepEqual(analyzeDecoder({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' }), {
    spelling: 'sentencepiece',
    stripsLeadingSpace: true,
  });
  assert.deepEqual(analyzeDecoder({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'never' }), {
    spelling: 'sentencepiece',
    stripsLeadingSpace: false,
  });
  assert.deepEqual(analyzeDecoder({ type: 'WordPiece' }), { spelling: 'plain', stripsLeadingSpace: false });
  assert.deepEqual(analyzeDecoder(null), { spelling: 'plain', stripsLeadingSpace: false });
});
