// llama2.c conversion: the Llama 2 tokenizer.bin reproduces llama.cpp's llama-spm vectors through HF
// tokenizers; the rotary permutation matches interleaved-pair RoPE; headers and sizes are validated.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2c, parseLlama2cHeader, writeLlama2cTokenizer, LLAMA2C_V1_MAGIC } from '../../src/model/convert/llama2c.js';
import { permuteRotaryRows } from '../../src/model/convert/hf-llama-writer.js';
import { parseLlama2cTokenizer } from '../../src/model/convert/llama2c-tokenizer.js';
import { readSafetensorsFile } from '../../src/model/safetensors.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import { IncrementalDetokenizer } from '../../src/engine/detokenizer.js';
import { TokenmillError } from '../../src/util/errors.js';
import { readVocabVectors, sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const work = mkdtempSync(join(tmpdir(), 'tm-l2c-'));
after(() => rmSync(work, { recursive: true, force: true }));
const isCode = (code: string, re?: RegExp) => (e: unknown) => e instanceof TokenmillError && e.code === code && (!re || re.test(e.message));

let llama2: ModelTokenizer | null = null;
function llama2Tokenizer(): ModelTokenizer {
  if (!llama2) {
    const dir = join(work, 'llama2-tok');
    writeLlama2cTokenizer(sharedPath('llama2-tokenizer/tokenizer.bin'), 32000, 4096, dir);
    llama2 = loadTokenizer(dir);
  }
  return llama2;
}

test('llama2 tokenizer.bin -> tokenizer.json reproduces all 46 llama-spm vectors', {
  skip: skipUnlessShared('llama2-tokenizer/tokenizer.bin', 'tokenizer-test-vectors/ggml-vocab-llama-spm.gguf.out'),
}, async () => {
  const tok = llama2Tokenizer();
  const cases = readVocabVectors('ggml-vocab-llama-spm.gguf');
  assert.equal(cases.length, 46);
  for (const { text, ids } of cases) assert.deepEqual(await tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
  assert.deepEqual(await tok.encode('Hello world'), [1, 15043, 3186]);
  assert.equal(tok.spelling, 'sentencepiece');
  assert.equal(tok.stripsLeadingSpace, true);
});

test('llama2 SPM byte fallback: streamed text equals HF decode (emoji, CJK, mixed)', {
  skip: skipUnlessShared('llama2-tokenizer/tokenizer.bin'),
}, async () => {
  const tok = llama2Tokenizer();
  for (const s of ['Hello 😀 world', '我喜欢吃苹果。', 'mixed: café 🇺🇳 한국어 👨‍👩‍👧\n end', ' leading space']) {
    const ids = await tok.encode(s);
    assert.equal(ids[0], 1);
    const d = new IncrementalDetokenizer(tok, { promptTokenIds: [1] });
    const pieces = ids.slice(1).map((id) => d.push(id));
    pieces.push(d.flush());
    for (const p of pieces) assert.ok(!p.includes('\uFFFD'), JSON.stringify(p));
    assert.equal(pieces.join(''), await tok.decode(ids));
    assert.equal(pieces.join(''), s, 'only the dummy-prefix space is dropped');
  }
});

test('permuteRotaryRows: interleaved-pair RoPE equals rotate_half RoPE on permuted rows', () => {
  assert.deepEqual([...permuteRotaryRows(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 2, 4, 1)], [0, 2, 1, 3, 4, 6, 5, 7]);
  const H = 3,
    Dh = 8,
    K = 5;
  const w = Float32Array.from({ length: H * Dh * K }, (_, i) => Math.sin(i * 1.7));
  const x = Float32Array.from({ length: K }, (_, i) => Math.cos(i * 0.3));
  const proj = (m: Float32Array) => Array.from({ length: H * Dh }, (_, r) => x.reduce((s, xi, c) => s + m[r * K + c]! * xi, 0));
  const pos = 7;
  const angle = (i: number) => pos / 10000 ** ((2 * i) / Dh);
  const q = proj(w); // llama2.c: rotate (q[2i], q[2i+1])
  const q2 = proj(permuteRotaryRows(w, H, Dh, K)); // HF: rotate (q[i], q[i + Dh/2])
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < Dh / 2; i++) {
      const [c, s] = [Math.cos(angle(i)), Math.sin(angle(i))];
      const a = q[h * Dh + 2 * i]!,
        b = q[h * Dh + 2 * i + 1]!;
      const a2 = q2[h * Dh + i]!,
        b2 = q2[h * Dh + i + Dh / 2]!;
      assert.ok(Math.abs(a * c - b * s - (a2 * c - b2 * s)) < 1e-5);
      assert.ok(Math.abs(b * c + a * s - (b2 * c + a2 * s)) < 1e-5);
    }
  }
});

/** A tiny legacy or v1 checkpoint with values = index, so every tensor is recognisable. */
function writeTinyCheckpoint(path: string, format: 'legacy' | 'v1', shared: boolean, truncateBytes = 0): void {
  const [D, F, L, H, Hkv, V, S] = [8, 12, 2, 2, 1, 16, 4];
  const kv = (D / H) * Hkv;
  const perLayer = D + D * D + 2 * kv * D + D * D + D + 3 * F * D;
  const numFloats = V * D + L * perLayer + D + (format === 'legacy' ? S * (D / H) : 0) + (shared ? 0 : V * D);
  const header = new DataView(new ArrayBuffer(format === 'v1' ? 256 : 28));
  const dims = [D, F, L, H, Hkv, format === 'legacy' && !shared ? -V : V, S];
  if (format === 'v1') {
    header.setUint32(0, LLAMA2C_V1_MAGIC, true);
    header.setInt32(4, 1, true);
    dims.forEach((d, i) => header.setInt32(8 + 4 * i, d, true));
    header.setUint8(36, shared ? 1 : 0);
  } else dims.forEach((d, i) => header.setInt32(4 * i, d, true));
  const body = Float32Array.from({ length: numFloats }, (_, i) => i);
  const all = Buffer.concat([Buffer.from(header.buffer), Buffer.from(body.buffer)]);
  writeFileSync(path, all.subarray(0, all.byteLength - truncateBytes));
}

test('untied legacy (negative vocab) and v1 (shared flag 0) write lm_head; tied ones do not', () => {
  for (const [format, shared] of [
    ['legacy', false],
    ['v1', false],
    ['legacy', true],
    ['v1', true],
  ] as const) {
    const bin = join(work, `tiny-${format}-${shared}.bin`);
    writeTinyCheckpoint(bin, format, shared);
    const out = join(work, `out-${format}-${shared}`);
    const r = convertLlama2c(bin, null, out);
    assert.equal(r.header.sharedClassifier, shared);
    const { tensors } = readSafetensorsFile(join(out, 'model.safetensors'));
    assert.equal(tensors.has('lm_head.weight'), !shared);
    assert.equal(tensors.size, 2 + 2 * 9 + (shared ? 0 : 1));
    assert.deepEqual(tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape, [4, 8]);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(cfg.tie_word_embeddings, shared);
    assert.equal(cfg.num_key_value_heads, 1);
    const gen = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'));
    assert.deepEqual(gen, { bos_token_id: 1, eos_token_id: [2, 1] });
    const emb = tensors.get('model.embed_tokens.weight')!.data as Float32Array;
    assert.equal(emb.length, 16 * 8);
  }
});

test('malformed checkpoints and tokenizers are llama2c_invalid', () => {
  const truncated = join(work, 'trunc.bin');
  writeTinyCheckpoint(truncated, 'legacy', true, 4);
  assert.throws(() => convertLlama2c(truncated, null, join(work, 'x')), isCode('llama2c_invalid', /size is .* implies/));
  const zeros = join(work, 'zeros.bin');
  writeFileSync(zeros, new Uint8Array(64));
  assert.throws(() => convertLlama2c(zeros, null, join(work, 'x')), isCode('llama2c_invalid', /out of range/));
  const v2 = join(work, 'v2.bin');
  writeTinyCheckpoint(v2, 'v1', true);
  const b = readFileSync(v2);
  b.writeInt32LE(2, 4);
  writeFileSync(v2, b);
  assert.throws(() => convertLlama2c(v2, null, join(work, 'x')), isCode('llama2c_invalid', /version 2/));
  assert.throws(() => convertLlama2c(join(work, 'missing.bin'), null, join(work, 'x')), isCode('file_not_found'));

  const tokBin = (tokens: string[], extra = 0) => {
    const parts = [Buffer.from(Int32Array.of(8).buffer)];
    for (const t of tokens) {
      const s = Buffer.from(t);
      parts.push(Buffer.from(Float32Array.of(0).buffer), Buffer.from(Int32Array.of(s.length + extra).buffer), s);
    }
    return new Uint8Array(Buffer.concat(parts));
  };
  const ok = tokBin(['<unk>', '\n<s>\n', '\n</s>\n', ' a']);
  assert.deepEqual(
    parseLlama2cTokenizer(ok, 4).map((p) => p.piece),
    ['<unk>', '<s>', '</s>', '▁a'],
  );
  assert.throws(() => parseLlama2cTokenizer(ok, 5), isCode('llama2c_invalid', /ends at token 4/));
  assert.throws(() => parseLlama2cTokenizer(ok, 3), isCode('llama2c_invalid', /bytes after 3 tokens/));
  assert.throws(() => parseLlama2cTokenizer(tokBin(['<unk>', 'x', 'y', 'toolongtoken']), 4), isCode('llama2c_invalid', /length 12/));
  assert.throws(() => parseLlama2cTokenizer(tokBin(['<unk>', 'x', 'y', 'z'], 1), 4), isCode('llama2c_invalid'));
});

test('fuzz: random headers and mutated tokenizer.bin bytes are accepted or llama2c_invalid', () => {
  const tokens = ['<unk>', '\n<s>\n', '\n</s>\n', ' a', 'bc'];
  const parts = [Buffer.from(Int32Array.of(4).buffer)];
  for (const t of tokens)
    parts.push(Buffer.from(Float32Array.of(-1).buffer), Buffer.from(Int32Array.of(Buffer.byteLength(t)).buffer), Buffer.from(t));
  const tok = new Uint8Array(Buffer.concat(parts));
  const ok = (e: unknown) => e instanceof TokenmillError && e.code === 'llama2c_invalid';
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (head) => {
      try {
        parseLlama2cHeader(head);
      } catch (e) {
        assert.ok(ok(e), String(e));
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.nat({ max: tok.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: tok.byteLength }), (at, v, cut) => {
      const b = tok.slice(0, cut);
      if (at < b.byteLength) b[at] = v;
      try {
        parseLlama2cTokenizer(b, 5);
      } catch (e) {
        assert.ok(ok(e), String(e));
      }
    }),
    { numRuns: 1000 },
  );
});

/** llama2.c's own encoder (run.c): dummy prefix, code points with byte fallback, best-score merges. */
function llama2cEncode(pieces: readonly { piece: string; score: number }[], text: string): number[] {
  if (text === '') return [];
  const ids = new Map(pieces.map((p, i) => [p.piece, i]));
  const toks: number[] = [];
  for (const ch of '▁' + text.replaceAll(' ', '▁')) {
    const id = ids.get(ch);
    if (id !== undefined) toks.push(id);
    else for (const b of new TextEncoder().encode(ch)) toks.push(b + 3);
  }
  for (;;) {
    let best = -Infinity,
      at = -1,
      merged = -1;
    for (let i = 0; i + 1 < toks.length; i++) {
      const id = ids.get(pieces[toks[i]!]!.piece + pieces[toks[i + 1]!]!.piece);
      if (id !== undefined && pieces[id]!.score > best) {
        best = pieces[id]!.score;
        at = i;
        merged = id;
      }
    }
    if (at < 0) return toks;
    toks.splice(at, 2, merged);
  }
}

for (const [rel, vocabSize] of [
  ['stories260K/tok512.bin', 512],
  ['llama2-tokenizer/tokenizer.bin', 32000],
] as const) {
  test(`property: converted ${rel} encodes like llama2.c's own encoder`, { skip: skipUnlessShared(rel) }, async () => {
    const dir = join(work, `prop-${vocabSize}`);
    writeLlama2cTokenizer(sharedPath(rel), vocabSize, 512, dir);
    const tok = loadTokenizer(dir);
    const pieces = parseLlama2cTokenizer(readFileSync(sharedPath(rel)), vocabSize);
    const unit = fc.constantFrom(...'abc deLily once upon a time,.!?\n\t😀中文 éö  ü🦙');
    await fc.assert(
      fc.asyncProperty(fc.string({ unit, maxLength: 40 }), async (s) => {
        assert.deepEqual(await tok.encode(s, { addSpecialTokens: false }), llama2cEncode(pieces, s));
      }),
      { numRuns: 300 },
    );
  });
}
