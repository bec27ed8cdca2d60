// convertToGguf: HF -> GGUF -> HF (gguf.ts) round trips give bit-identical tensors and the same
// tokenizer encoding, on stories260K (llama2.c-converted, SentencePiece-style 'llama' tokenizer;
// tensors also byte-equal to llama.cpp's own stories260K.gguf) and on seeded tiny random models
// (byte-level 'gpt2' tokenizer, GQA, untied, f16/bf16, llama3 rope factors); the writer's layout.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertGguf, readGgufFile } from '../../src/model/convert/gguf.js';
import { fileSource, type GgufValue } from '../../src/model/convert/gguf-reader.js';
import { ggufTokenizerFiles } from '../../src/model/convert/gguf-tokenizer.js';
import { exportTokenizer } from '../../src/model/convert/gguf-tokenizer-export.js';
import { writeTokenizerFiles } from '../../src/model/convert/hf-llama-writer.js';
import { convertLlama2c } from '../../src/model/convert/llama2c.js';
import { permuteRotaryRows } from '../../src/model/convert/hf-llama-writer.js';
import { convertToGguf, llama3RopeFactors, unpermuteRotaryRows } from '../../src/model/convert/to-gguf.js';
import { inferLlama3RopeScaling } from '../../src/model/convert/gguf.js';
import { parseModelConfig } from '../../src/model/config.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { readSafetensorsFile, type HostTensor } from '../../src/model/safetensors.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { halfToF32 } from '../../src/runtime/dtype.js';
import { TokenmillError } from '../../src/util/errors.js';
import { readVocabVectors, sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

const work = mkdtempSync(join(tmpdir(), 'tm-to-gguf-'));
after(() => rmSync(work, { recursive: true, force: true }));

const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  'Hello  world!\n\tTabs, "quotes" and 123456 digits.',
  'héllo wörld ✓ 你好',
  '',
];

/** Float values of a tensor (F16/BF16 widened exactly), for comparisons across storage dtypes. */
function values(t: HostTensor): Float32Array {
  return t.dtype === 'F32' ? (t.data as Float32Array) : halfToF32(t.data as Uint16Array, t.dtype === 'F16' ? 'f16' : 'bf16');
}

/** Round trip dir -> GGUF -> dir2 and compare tensors (bit for bit) and tokenizer encodings. */
async function roundTrip(dir: string, name: string, sameDtypes: boolean, dtype?: 'f32' | 'f16' | 'bf16'): Promise<string> {
  const gguf = join(work, `${name}.gguf`);
  const back = join(work, `${name}-back`);
  const r = convertToGguf(dir, gguf, dtype === undefined ? {} : { dtype });
  convertGguf(gguf, back);
  const a = readSafetensorsFile(join(dir, 'model.safetensors')).tensors;
  const b = readSafetensorsFile(join(back, 'model.safetensors')).tensors;
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, ta] of a) {
    const tb = b.get(k)!;
    assert.deepEqual(tb.shape, ta.shape, k);
    if (sameDtypes && ta.shape.length === 2) assert.equal(tb.dtype, ta.dtype, k);
    const [va, vb] = [values(ta), values(tb)];
    assert.ok(
      Buffer.from(va.buffer, va.byteOffset, va.byteLength).equals(Buffer.from(vb.buffer, vb.byteOffset, vb.byteLength)),
      `${k}: values differ`,
    );
  }
  const ca = parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const cb = parseModelConfig(JSON.parse(readFileSync(join(back, 'config.json'), 'utf8')));
  for (const f of [
    'numLayers',
    'hiddenSize',
    'intermediateSize',
    'numHeads',
    'numKvHeads',
    'headDim',
    'vocabSize',
    'maxPositionEmbeddings',
    'tieWordEmbeddings',
    'bosTokenId',
  ] as const) {
    assert.deepEqual(cb[f], ca[f], f);
  }
  assert.equal(Math.fround(cb.rmsNormEps), Math.fround(ca.rmsNormEps));
  assert.equal(Math.fround(cb.ropeTheta), Math.fround(ca.ropeTheta));
  assert.deepEqual(cb.ropeScaling, ca.ropeScaling);
  const [tokA, tokB] = [loadTokenizer(dir), loadTokenizer(back)];
  for (const text of TEXTS) {
    assert.deepEqual(await tokB.encode(text), await tokA.encode(text), JSON.stringify(text));
    assert.deepEqual(await tokB.encode(text, { addSpecialTokens: false }), await tokA.encode(text, { addSpecialTokens: false }));
  }
  assert.equal(r.warnings.length, 0, r.warnings.join('; '));
  return gguf;
}

describe('convert to-gguf', () => {
  it('unpermuteRotaryRows inverts permuteRotaryRows', () => {
    const w = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i);
    assert.deepEqual(unpermuteRotaryRows(permuteRotaryRows(w, 3, 8, 5), 3, 8, 5), w);
    assert.notDeepEqual(unpermuteRotaryRows(w, 3, 8, 5), w);
  });

  it('llama3 rope factors are what gguf.ts infers back', () => {
    const c = parseModelConfig(MODEL_PRESETS['tiny-llama3']!.config);
    const inferred = inferLlama3RopeScaling(llama3RopeFactors(c), c.headDim, c.ropeTheta);
    assert.deepEqual(inferred, {
      rope_type: 'llama3',
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    });
  });

  it("stories260K: HF -> GGUF -> HF is bit-identical; tensors equal llama.cpp's stories260K.gguf", {
    skip: skipUnlessShared('stories260K/stories260K.bin', 'stories260K/tok512.bin', 'stories260K/stories260K.gguf'),
  }, async () => {
    const hf = join(work, 'stories260K');
    convertLlama2c(sharedPath('stories260K/stories260K.bin'), sharedPath('stories260K/tok512.bin'), hf);
    const gguf = await roundTrip(hf, 'stories260K', true);
    assert.equal(readFileSync(join(work, 'stories260K-back', 'tokenizer.json'), 'utf8'), readFileSync(join(hf, 'tokenizer.json'), 'utf8'));
    const ours = readGgufFile(gguf);
    const ref = readGgufFile(sharedPath('stories260K/stories260K.gguf'));
    assert.equal(ours.version, 3);
    assert.equal(ours.metadata.get('general.architecture'), 'llama');
    assert.equal(ours.metadata.get('tokenizer.ggml.model'), 'llama');
    // llama.cpp's llama2c converter writes context_length 2048 whatever the model; ours writes max_position_embeddings.
    assert.equal(ours.metadata.get('llama.context_length'), 512);
    for (const k of [
      'llama.embedding_length',
      'llama.feed_forward_length',
      'llama.block_count',
      'llama.attention.head_count',
      'llama.attention.head_count_kv',
      'llama.rope.dimension_count',
      'tokenizer.ggml.tokens',
      'tokenizer.ggml.token_type',
      'tokenizer.ggml.bos_token_id',
      'tokenizer.ggml.eos_token_id',
      'tokenizer.ggml.unknown_token_id',
    ]) {
      assert.deepEqual(ours.metadata.get(k), ref.metadata.get(k), k);
    }
    const [so, sr] = [fileSource(gguf), fileSource(sharedPath('stories260K/stories260K.gguf'))];
    try {
      for (const t of ours.tensors.values()) {
        const u = ref.tensors.get(t.name)!;
        assert.deepEqual(t.shape, u.shape, t.name);
        assert.ok(
          Buffer.from(so.read(t.fileOffset, t.sizeBytes)).equals(Buffer.from(sr.read(u.fileOffset, u.sizeBytes))),
          `${t.name} differs from llama.cpp's`,
        );
      }
    } finally {
      so.close();
      sr.close();
    }
    assert.ok(!ours.tensors.has('output.weight') && ref.tensors.has('output.weight'), 'tied: token_embd serves as output');
  });

  it('tiny random Llama (GQA, tied, byte-level BPE): bit-identical round trip', async () => {
    const dir = join(work, 'tiny-llama');
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 7 });
    const gguf = await roundTrip(dir, 'tiny-llama', true);
    const g = readGgufFile(gguf);
    assert.equal(g.metadata.get('tokenizer.ggml.model'), 'gpt2');
    assert.equal(g.metadata.get('tokenizer.ggml.pre'), 'default');
    assert.equal(g.metadata.get('general.file_type'), 0);
    assert.equal(g.tensors.get('blk.0.attn_norm.weight')!.typeName, 'F32');
  });

  it('tiny Llama 3.1 style in bf16 (untied, llama3 rope) keeps bf16 and writes rope_freqs', async () => {
    const dir = join(work, 'tiny-llama3');
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama3']!.config, { seed: 8, dtype: 'bf16' });
    const g = readGgufFile(await roundTrip(dir, 'tiny-llama3', true));
    assert.equal(g.tensors.get('blk.1.attn_q.weight')!.typeName, 'BF16');
    assert.equal(g.tensors.get('rope_freqs.weight')!.typeName, 'F32');
    assert.ok(g.tensors.has('output.weight'));
    assert.equal(g.metadata.get('general.file_type'), 32);
  });

  it('f16 checkpoint with --dtype f16: F16 matrices, F32 norms, values bit-identical', async () => {
    const dir = join(work, 'tiny-f16');
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 9, dtype: 'f16' });
    const g = readGgufFile(await roundTrip(dir, 'tiny-f16', true, 'f16'));
    assert.equal(g.tensors.get('token_embd.weight')!.typeName, 'F16');
    assert.equal(g.tensors.get('output_norm.weight')!.typeName, 'F32');
  });

  it('rejects what it cannot write (sliding-window attention)', () => {
    const dir = join(work, 'tiny-mistral');
    writeRandomModel(dir, MODEL_PRESETS['tiny-mistral']!.config, { seed: 1 });
    assert.throws(
      () => convertToGguf(dir, join(work, 'm.gguf')),
      (e) => e instanceof TokenmillError && e.code === 'unsupported_architecture' && /sliding-window/.test(e.message),
    );
  });

  for (const [name, vectors, pre, vocabSize] of [
    ['llama3', 'ggml-vocab-llama-bpe.gguf', 'llama-bpe', 128256],
    ['qwen3', 'ggml-vocab-qwen2.gguf', 'qwen2', 151936],
  ] as const) {
    it(`${name} tokenizer: exported as gpt2/${pre}, rebuilt by gguf-tokenizer.ts, encodes llama.cpp's vectors alike`, {
      skip: skipUnlessShared(`${name}-tokenizer/tokenizer.json`, `tokenizer-test-vectors/${vectors}.inp`),
    }, async () => {
      const src = join(sharedPath(`${name}-tokenizer/tokenizer.json`), '..');
      const ex = exportTokenizer(src, { vocabSize, bosTokenId: null, eosTokenIds: [] })!;
      const meta = new Map<string, GgufValue>(
        ex.kvs.map((kv) => [kv.key, (ArrayBuffer.isView(kv.value) ? Array.from(kv.value as Int32Array) : kv.value) as GgufValue]),
      );
      assert.equal(meta.get('tokenizer.ggml.model'), 'gpt2');
      assert.equal(meta.get('tokenizer.ggml.pre'), pre);
      const files = ggufTokenizerFiles(meta, 4096, 'test')!;
      const out = join(work, `${name}-tok`);
      writeTokenizerFiles(out, files.tokenizerJson, files.tokenizerConfig);
      const [a, b] = [loadTokenizer(src), loadTokenizer(out)];
      for (const v of readVocabVectors(vectors)) {
        assert.deepEqual(
          await b.encode(v.text, { addSpecialTokens: false }),
          await a.encode(v.text, { addSpecialTokens: false }),
          JSON.stringify(v.text),
        );
      }
    });
  }
});
