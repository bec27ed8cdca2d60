// The UTF-8 state masks that keep constrained outputs valid UTF-8 (engine/grammar/utf8-mask.ts):
// the decoder state machine against TextDecoder (surrogates, overlong forms, C0/C1/F5-FF, stray
// continuation bytes), the per-state masks over the real Qwen3 and Llama 3 vocabularies checked
// token by token against TextDecoder's streaming fatal mode, SequenceGrammar applying them (a string
// never closes mid-character; rollback restores the state), and a seeded property test: constrained
// generations with maxLength strings at temperature 1 on a random model with the Qwen3 vocabulary
// all decode as valid UTF-8, exactly to the delivered text, and validate (ajv).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { checkOutput } from '../../src/engine/grammar/constraint-check.js';
import { grammarCompilerFor } from '../../src/engine/grammar/grammar-compiler.js';
import { encodeVocab } from '../../src/engine/grammar/grammar-vocab.js';
import { SequenceGrammar } from '../../src/engine/grammar/sequence-grammar.js';
import { UTF8_BOUNDARY, UTF8_INVALID, UTF8_STATES, Utf8Masks, utf8Resync, utf8Run } from '../../src/engine/grammar/utf8-mask.js';
import { samplingParams, type Constraint } from '../../src/engine/sampling-params.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { disposeRealVocabModels, realVocabModel, type RealVocabKind } from './real-vocab-model.js';

after(disposeRealVocabModels);
const skip = skipUnlessShared('qwen3-tokenizer/tokenizer.json', 'llama3-tokenizer/tokenizer.json');

const B = (...b: number[]) => Uint8Array.from(b);
/** A lead sequence that leaves the decoder in each state (index = state). */
const LEADS = [B(), B(0xc3), B(0xe1), B(0xe0), B(0xed), B(0xf1), B(0xf0), B(0xf4)];

/** Oracle: bytes (after the lead of state s) are a valid UTF-8 prefix, per WHATWG's streaming decoder. */
function validPrefix(s: number, bytes: Uint8Array): boolean {
  const all = new Uint8Array(LEADS[s]!.length + bytes.length);
  all.set(LEADS[s]!);
  all.set(bytes, LEADS[s]!.length);
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(all, { stream: true });
    return true;
  } catch {
    return false;
  }
}

test('the decoder states: valid forms pass, surrogates / overlong / C0 C1 F5-FF / stray continuations are invalid', () => {
  for (let s = 0; s < UTF8_STATES; s++) assert.equal(utf8Run(UTF8_BOUNDARY, LEADS[s]!), s, `lead of state ${s}`);
  const valid = [
    B(0x41),
    B(0xc2, 0x80),
    B(0xdf, 0xbf),
    B(0xe0, 0xa0, 0x80),
    B(0xed, 0x9f, 0xbf),
    B(0xee, 0x80, 0x80),
    B(0xf0, 0x90, 0x80, 0x80),
    B(0xf3, 0xbf, 0xbf, 0xbf),
    B(0xf4, 0x8f, 0xbf, 0xbf),
    B(0xe5, 0x87, 0x86),
  ];
  for (const v of valid) assert.equal(utf8Run(UTF8_BOUNDARY, v), UTF8_BOUNDARY, v.join(','));
  const invalid = [
    B(0xed, 0xa0, 0x80),
    B(0xed, 0xbf),
    B(0xe0, 0x80),
    B(0xe0, 0x9f),
    B(0xc0, 0x80),
    B(0xc1, 0xbf),
    B(0xf0, 0x8f),
    B(0xf4, 0x90),
    B(0xf5),
    B(0xff),
    B(0x80),
    B(0xbf),
    B(0x41, 0x9f),
    B(0xc3, 0x22),
    B(0xe4, 0xbd, 0x22),
    B(0xf0, 0x9f, 0x98, 0x41),
  ];
  for (const v of invalid) assert.equal(utf8Run(UTF8_BOUNDARY, v), UTF8_INVALID, v.join(','));
  // Incomplete is not invalid: it leaves a state.
  assert.equal(utf8Run(UTF8_BOUNDARY, B(0xf0, 0x9f)), 2);
  assert.equal(utf8Run(UTF8_BOUNDARY, B(0xe4, 0xbd)), 1);
  // Resync (free text): an invalid byte ends the pending character and is read again.
  assert.equal(utf8Resync(UTF8_BOUNDARY, B(0xe4, 0x41)), UTF8_BOUNDARY);
  assert.equal(utf8Resync(UTF8_BOUNDARY, B(0xe4, 0xc3)), 1);
  assert.equal(utf8Resync(UTF8_BOUNDARY, B(0x80, 0xff)), UTF8_BOUNDARY);
});

test('the state machine agrees with TextDecoder on 20,000 random byte strings from every state', () => {
  let x = 12345;
  const rnd = () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0) / 2 ** 32;
  const interesting = [
    0x22, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5,
    0xff,
  ];
  for (let i = 0; i < 20_000; i++) {
    const bytes = Uint8Array.from({ length: 1 + Math.floor(rnd() * 5) }, () =>
      rnd() < 0.7 ? interesting[Math.floor(rnd() * interesting.length)]! : Math.floor(rnd() * 256),
    );
    const s = i % UTF8_STATES;
    assert.equal(
      utf8Run(s, bytes) !== UTF8_INVALID,
      validPrefix(s, bytes),
      `state ${s}, bytes ${[...bytes].map((b) => b.toString(16)).join(' ')}`,
    );
  }
});

async function masksFor(kind: RealVocabKind): Promise<{ masks: Utf8Masks; bytes: Uint8Array[]; rowSize: number }> {
  const m = await realVocabModel(kind);
  const rowSize = m.model.config.vocabSize;
  const v = encodeVocab(m.tokenizer, rowSize);
  return { masks: new Utf8Masks(v.bytes, rowSize), bytes: v.bytes, rowSize };
}

const bit = (mask: Int32Array, id: number) => ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;

for (const kind of ['qwen3', 'llama3'] as const) {
  test(`${kind} vocabulary: every token's bit in every state's mask matches TextDecoder; byte tokens and EOS as expected`, {
    skip,
  }, async () => {
    const m = await realVocabModel(kind);
    const { masks, bytes, rowSize } = await masksFor(kind);
    const forbiddenAtBoundary: number[] = [];
    for (let id = 0; id < rowSize; id++) {
      const b = bytes[id]!;
      for (let s = 0; s < UTF8_STATES; s++) {
        // ASCII is never a continuation byte: such tokens pass only at a boundary (no decoder needed).
        const want = b.length === 0 || (b.every((x) => x < 0x80) ? s === 0 : validPrefix(s, b));
        if (bit(masks.masks[s]!, id) !== want)
          assert.fail(`${kind}: token ${id} (${[...b].join(',')}) in state ${s}: mask ${!want}, TextDecoder ${want}`);
      }
      if (!bit(masks.masks[0]!, id)) forbiddenAtBoundary.push(id);
    }
    // Byte-level vocabularies hold all 256 single bytes, and merged tokens that start mid-character.
    assert.ok(forbiddenAtBoundary.length >= 64 + 2 + 11, `${forbiddenAtBoundary.length} tokens forbidden at a boundary`);
    const single = (byte: number) => bytes.findIndex((b) => b.length === 1 && b[0] === byte);
    for (const byte of [0xc0, 0xc1, 0xf5, 0xff]) {
      const id = single(byte);
      assert.ok(id >= 0);
      for (let s = 0; s < UTF8_STATES; s++) assert.equal(bit(masks.masks[s]!, id), false, `byte ${byte} in state ${s}`);
    }
    // After ED only 80-9F (no surrogate); after E0 only A0-BF (no overlong); a quote only at a boundary.
    assert.equal(bit(masks.masks[4]!, single(0xa0)), false);
    assert.equal(bit(masks.masks[4]!, single(0x9f)), true);
    assert.equal(bit(masks.masks[3]!, single(0x9f)), false);
    assert.equal(bit(masks.masks[3]!, single(0xa0)), true);
    assert.equal(masks.step(4, single(0x80)), 1);
    const quote = single(0x22);
    for (let s = 0; s < UTF8_STATES; s++) assert.equal(bit(masks.masks[s]!, quote), s === 0, `quote in state ${s}`);
    for (const eos of m.eosTokenIds)
      for (let s = 0; s < UTF8_STATES; s++) assert.equal(masks.step(s, eos), s, 'a token without bytes passes, state unchanged');
  });
}

test('SequenceGrammar: a string never closes mid-character, a surrogate is never started; rollback restores the state', {
  skip,
}, async () => {
  const m = await realVocabModel('qwen3');
  const cache = await grammarCompilerFor(m.tokenizer, m.model.config.vocabSize, m.eosTokenIds);
  const c: Constraint = {
    type: 'json_schema',
    schema: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'], additionalProperties: false },
  };
  const compiled = await cache.compile(c);
  const tok = m.tokenizer;
  const single = (byte: number) => {
    for (let t = 0; t < tok.vocabSize; t++) {
      const b = tok.tokenBytes(t);
      if (b.length === 1 && b[0] === byte && !tok.isSpecial(t)) return t;
    }
    throw new Error(`no token for byte ${byte}`);
  };
  const prefix = await tok.encode('{"city": "', { addSpecialTokens: false });
  const g = new SequenceGrammar(cache, compiled, m.eosTokenIds);
  await g.prepareMask(prefix);
  assert.equal(g.utf8State, 0);
  assert.ok(g.allows(single(0xe4)) && g.allows(single(0xed)) && g.allows(single(0x22)));
  assert.ok(!g.allows(single(0x80)), 'a stray continuation byte is refused');
  // Mid-character (E4 ..): the closing quote is refused, a continuation is allowed.
  await g.prepareMask([...prefix, single(0xe4)]);
  assert.equal(g.utf8State, 2);
  assert.ok(!g.allows(single(0x22)), 'the string cannot close mid-character');
  assert.ok(g.allows(single(0xbd)));
  // The raw grammar mask would allow a token the UTF-8 state refuses (what made the bug).
  const raw = await cache.xg.GrammarMatcher.createGrammarMatcher(compiled.compiled, [...m.eosTokenIds], false, -1);
  for (const t of [...prefix, single(0xed)]) assert.ok(raw.acceptToken(t));
  const rawMask = await raw.getNextTokenBitmask();
  raw.dispose();
  await g.prepareMask([...prefix, single(0xed)]);
  assert.equal(g.utf8State, 4);
  assert.ok(!g.allows(single(0xa0)), 'ED A0 (a surrogate) is refused');
  assert.ok(bit(rawMask, single(0xa0)), 'xgrammar alone would accept ED A0');
  assert.ok(g.allows(single(0x9f)));
  await g.prepareMask([...prefix, single(0xed), single(0x9f)]);
  assert.equal(g.utf8State, 1);
  await g.prepareMask(prefix); // roll back
  assert.equal(g.utf8State, 0);
  assert.ok(g.allows(single(0x22)));
  g.dispose();
});

test('seeded property: 240 constrained generations at temperature 1 (Qwen3 vocabulary) are valid UTF-8, no stray U+FFFD, and validate', {
  skip,
}, async () => {
  const m = await realVocabModel('qwen3');
  const eng = new AsyncEngine({
    model: m.model,
    modelId: 'tiny-qwen3-vocab',
    tokenizer: m.tokenizer,
    eosTokenIds: m.eosTokenIds,
    numBlocks: 512,
    blockSize: 16,
    maxNumSeqs: 64,
    maxNumBatchedTokens: 512,
    maxWaitingRequests: 4096,
  });
  const schemas = [
    { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'], additionalProperties: false },
    {
      type: 'object',
      properties: { a: { type: 'string', maxLength: 3 }, b: { type: 'string', minLength: 1, maxLength: 5 } },
      required: ['a', 'b'],
      additionalProperties: false,
    },
    { type: 'array', items: { type: 'string', maxLength: 2 }, minItems: 1, maxItems: 3 },
  ];
  const prompt = await m.tokenizer.encode('JSON:');
  // Adversarial bias: favour the tokens that start or end mid-character (random weights alone rarely
  // pick them), and drop pure whitespace so that the outputs reach their strings.
  const logitBias = new Map<number, number>();
  for (let t = 0; t < m.tokenizer.vocabSize; t++) {
    const b = m.tokenizer.tokenBytes(t);
    if (b.length === 0 || m.tokenizer.isSpecial(t)) continue;
    if (utf8Run(UTF8_BOUNDARY, b) !== UTF8_BOUNDARY) logitBias.set(t, 6);
    else if (b.every((x) => x === 0x20 || x === 0x0a || x === 0x09 || x === 0x0d)) logitBias.set(t, -100);
  }
  const jobs = Array.from({ length: 240 }, async (_, i) => {
    const c: Constraint = { type: 'json_schema', schema: schemas[i % schemas.length]!, strict: true };
    const params = samplingParams({ temperature: 1, seed: 7000 + i, maxTokens: 40, constraint: c, ...(i % 4 !== 0 ? { logitBias } : {}) });
    const ids: number[] = [];
    let text = '';
    let finishReason: string | null = null;
    for await (const o of eng.generate({ requestId: `u${i}`, promptTokenIds: [...prompt, i % 101], params })) {
      ids.push(...o.newTokenIds);
      text += o.newText;
      if (o.finished) finishReason = o.finishReason;
    }
    return { c, ids, text, finishReason };
  });
  let finished = 0;
  let multibyte = 0;
  for (const r of await Promise.all(jobs)) {
    const content = r.ids.filter((t) => !m.eosTokenIds.includes(t));
    const bytes = Buffer.concat(content.map((t) => m.tokenizer.tokenBytes(t)));
    assert.ok(validPrefix(0, bytes), `invalid UTF-8 in ${JSON.stringify(r.text)}`);
    if (bytes.some((b) => b >= 0x80)) multibyte++;
    if (r.finishReason !== 'stop') continue;
    finished++;
    // The delivered text is exactly the bytes the grammar checked (a U+FFFD only where a token spells EF BF BD).
    assert.equal(r.text, new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    if (!bytes.includes(0xef)) assert.ok(!r.text.includes('\uFFFD'), `U+FFFD in ${JSON.stringify(r.text)}`);
    const v = checkOutput(r.c, r.text);
    assert.ok(v.ok, `${JSON.stringify(r.text)} fails its schema: ${v.ok ? '' : v.reason}`);
  }
  assert.ok(finished >= 120, `finished ${finished}/240`);
  assert.ok(multibyte >= 60, `only ${multibyte} outputs had non-ASCII bytes: the test would not exercise the masks`);
  await eng.shutdown();
});
