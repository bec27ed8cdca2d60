// Incremental detokenizer: released text is always valid UTF-8, never splits a character, equals
// HF decode for whole sequences (emoji, CJK, mixed) on SentencePiece byte-fallback and byte-level vocabularies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IncrementalDetokenizer, incompleteUtf8Tail, type TokenBytesSource } from '../../src/engine/detokenizer.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { byteTokenName } from '../../src/model/tokenizer-bytes.js';
import { sharedPath, skipUnlessShared } from './shared-models.js';
import { dirname } from 'node:path';

/** A tiny SentencePiece-like vocab: specials, 256 byte tokens, a few pieces; strips the dummy-prefix space. */
function spmFake(): TokenBytesSource & { ids(...pieces: string[]): number[] } {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(byteTokenName(b));
  pieces.push('▁Hello', '▁world', '!', '▁', '中', '文');
  const enc = new TextEncoder();
  return {
    stripsLeadingSpace: true,
    isSpecial: (id) => id <= 2,
    tokenBytes: (id) => {
      const p = pieces[id]!;
      const m = /^<0x([0-9A-F]{2})>$/.exec(p);
      return m ? Uint8Array.of(parseInt(m[1]!, 16)) : enc.encode(id <= 2 ? p : p.replaceAll('▁', ' '));
    },
    ids: (...ps) => ps.map((p) => pieces.indexOf(p)),
  };
}

function feed(d: IncrementalDetokenizer, ids: number[]): string[] {
  return ids.map((id) => d.push(id));
}

test('utf8 tail detection', () => {
  const b = (...x: number[]) => Uint8Array.from(x);
  assert.equal(incompleteUtf8Tail(b(0x41)), 0);
  assert.equal(incompleteUtf8Tail(b(0xf0)), 1);
  assert.equal(incompleteUtf8Tail(b(0xf0, 0x9f)), 2);
  assert.equal(incompleteUtf8Tail(b(0xf0, 0x9f, 0x98)), 3);
  assert.equal(incompleteUtf8Tail(b(0xf0, 0x9f, 0x98, 0x80)), 0);
  assert.equal(incompleteUtf8Tail(b(0xe4, 0xb8)), 2);
  assert.equal(incompleteUtf8Tail(b(0xe0, 0x80)), 0, 'overlong: invalid, released as U+FFFD');
  assert.equal(incompleteUtf8Tail(b(0x80)), 0, 'lone continuation: invalid');
});

test('spm byte fallback: emoji split over 4 byte tokens is released whole', () => {
  const t = spmFake();
  const d = new IncrementalDetokenizer(t, { promptTokenIds: [1] });
  const emoji = [...new TextEncoder().encode('😀')].map((x) => 3 + x);
  const out = feed(d, [...t.ids('▁Hello'), ...emoji, ...t.ids('▁world', '!'), 2]);
  assert.deepEqual(out, ['Hello', '', '', '', '😀', ' world', '!', '']);
  assert.equal(d.flush(), '');
  assert.equal(d.text, 'Hello😀 world!');
});

test('spm leading space: kept after a text prompt, stripped after a BOS-only prompt', () => {
  const t = spmFake();
  assert.equal(new IncrementalDetokenizer(t, { promptTokenIds: t.ids('<s>', '▁Hello') }).pushMany(t.ids('▁world')), ' world');
  assert.equal(new IncrementalDetokenizer(t, { promptTokenIds: t.ids('<s>') }).pushMany(t.ids('▁world', '▁world')), 'world world');
  assert.equal(new IncrementalDetokenizer(t, { skipSpecialTokens: false }).pushMany(t.ids('<s>', '▁world')), '<s> world');
});

test('truncated character at end of stream becomes U+FFFD on flush; invalid bytes do not stall', () => {
  const t = spmFake();
  const d = new IncrementalDetokenizer(t, { promptTokenIds: [1] });
  assert.equal(d.pushMany([3 + 0xe4, 3 + 0xb8]), '');
  assert.equal(d.numPendingBytes, 2);
  assert.equal(d.flush(), '\uFFFD');
  const d2 = new IncrementalDetokenizer(t, { promptTokenIds: [1] });
  assert.equal(d2.pushMany([3 + 0x80, ...t.ids('!')]), '\uFFFD!');
});

test('property: any split of any text releases only whole characters and reassembles exactly', () => {
  const t = spmFake();
  fc.assert(
    // A text that holds U+FFFD itself would trip the "no replacement character" check below; such a
    // text's reassembly is checked after the property.
    fc.property(
      fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes('\uFFFD')),
      (s) => {
        const d = new IncrementalDetokenizer(t, { promptTokenIds: t.ids('▁Hello') });
        let got = '';
        for (const byte of new TextEncoder().encode(s)) {
          const piece = d.push(3 + byte);
          assert.ok(!piece.includes('\uFFFD'));
          got += piece;
        }
        got += d.flush();
        assert.equal(got, s);
      },
    ),
    { numRuns: 200 },
  );
  const d = new IncrementalDetokenizer(t, { promptTokenIds: t.ids('▁Hello') });
  const text = 'a\uFFFDb';
  const got = [...new TextEncoder().encode(text)].map((byte) => d.push(3 + byte)).join('') + d.flush();
  assert.equal(got, text);
});

for (const dir of ['llama3-tokenizer', 'qwen3-tokenizer']) {
  test(`${dir}: streamed text equals HF decode (emoji, CJK, mixed)`, { skip: skipUnlessShared(`${dir}/tokenizer.json`) }, async () => {
    const tok = loadTokenizer(dirname(sharedPath(`${dir}/tokenizer.json`)));
    const samples = ['Hello 😀 world', '我喜欢吃苹果。日本語のテキスト', 'mixed: café 🇺🇳 한국어 👨‍👩‍👧 end', '  spaces\n\ttabs  '];
    for (const s of samples) {
      const ids = await tok.encode(s, { addSpecialTokens: false });
      const d = new IncrementalDetokenizer(tok);
      const pieces = ids.map((id) => d.push(id));
      pieces.push(d.flush());
      for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `no broken characters in ${JSON.stringify(p)}`);
      assert.equal(pieces.join(''), await tok.decode(ids));
      assert.equal(pieces.join(''), s.normalize('NFC'));
    }
  });
}
