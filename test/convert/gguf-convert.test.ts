// convertGguf on synthetic Llama GGUFs (F16, untied classifier, permuted Q/K, embedded tokenizer)
// and rejections; the gpt2 (byte-level) embedded tokenizer path against llama.cpp's vectors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertGguf, inferLlama3RopeScaling } from '../../src/model/convert/gguf.js';
import { ggufTokenizerFiles } from '../../src/model/convert/gguf-tokenizer.js';
import { permuteRotaryRows, writeTokenizerFiles } from '../../src/model/convert/hf-llama-writer.js';
import { readSafetensorsFile } from '../../src/model/safetensors.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { TokenmillError } from '../../src/util/errors.js';
import { readVocabVectors, sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';
import { buildGguf, type Kv, type TensorSpec } from './gguf-builder.js';

const work = mkdtempSync(join(tmpdir(), 'tm-gguf-'));
after(() => rmSync(work, { recursive: true, force: true }));
const isGgufInvalid = (re: RegExp) => (e: unknown) => e instanceof TokenmillError && e.code === 'gguf_invalid' && re.test(e.message);

const [D, F, H, Hkv, V, Dh] = [8, 12, 2, 1, 9, 4];
const TOKENS = ['<unk>', '<s>', '</s>', '<0x0A>', '▁', 'a', 'b', '▁a', '▁ab'];

function f16Tensor(name: string, shape: number[], seed: number): TensorSpec & { values: Uint16Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Uint16Array.from({ length: n }, (_, i) => 0x3c00 + ((i * 7 + seed * 13) % 512)); // f16 around 1.0
  return { name, dims: [...shape].reverse(), type: 1, data: new Uint8Array(values.buffer), values };
}

function tinyLlama(overrides: { arch?: string; extraTensor?: TensorSpec; qType?: number; dropTensor?: string } = {}) {
  const kvs: Kv[] = [
    { key: 'general.architecture', type: 'str', value: overrides.arch ?? 'llama' },
    { key: 'llama.embedding_length', type: 'u32', value: D },
    { key: 'llama.feed_forward_length', type: 'u32', value: F },
    { key: 'llama.block_count', type: 'u32', value: 1 },
    { key: 'llama.attention.head_count', type: 'u32', value: H },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: Hkv },
    { key: 'llama.context_length', type: 'u32', value: 64 },
    { key: 'llama.rope.freq_base', type: 'f32', value: 500000 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-6 },
    { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'arr_str', value: TOKENS },
    { key: 'tokenizer.ggml.scores', type: 'arr_f32', value: [0, 0, 0, 0, -1, -2, -3, -4, -5] },
    { key: 'tokenizer.ggml.token_type', type: 'arr_i32', value: [2, 3, 3, 6, 1, 1, 1, 1, 1] },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: 0 },
    { key: 'tokenizer.chat_template', type: 'str', value: '{{ messages[0].content }}' },
  ];
  const tensors = [
    f16Tensor('token_embd.weight', [V, D], 1),
    f16Tensor('output_norm.weight', [D], 2),
    f16Tensor('output.weight', [V, D], 3),
    f16Tensor('blk.0.attn_norm.weight', [D], 4),
    f16Tensor('blk.0.attn_q.weight', [H * Dh, D], 5),
    f16Tensor('blk.0.attn_k.weight', [Hkv * Dh, D], 6),
    f16Tensor('blk.0.attn_v.weight', [Hkv * Dh, D], 7),
    f16Tensor('blk.0.attn_output.weight', [D, D], 8),
    f16Tensor('blk.0.ffn_norm.weight', [D], 9),
    f16Tensor('blk.0.ffn_gate.weight', [F, D], 10),
    f16Tensor('blk.0.ffn_down.weight', [D, F], 11),
    f16Tensor('blk.0.ffn_up.weight', [F, D], 12),
  ].filter((t) => t.name !== overrides.dropTensor);
  if (overrides.qType !== undefined) tensors[4] = { ...tensors[4]!, type: overrides.qType, data: new Uint8Array(H * Dh * D * 4) };
  const all: TensorSpec[] = overrides.extraTensor ? [...tensors, overrides.extraTensor] : tensors;
  return { bytes: buildGguf(kvs, all), tensors };
}

function write(name: string, bytes: Uint8Array): string {
  const p = join(work, name);
  writeFileSync(p, bytes);
  return p;
}

test('F16 llama GGUF: untied lm_head, permuted q/k, config and tokenizer', async () => {
  const { bytes, tensors } = tinyLlama();
  const out = join(work, 'tiny');
  const r = convertGguf(write('tiny.gguf', bytes), out);
  assert.equal(r.spec.tieWordEmbeddings, false);
  assert.equal(r.spec.torchDtype, 'float16');
  const st = readSafetensorsFile(join(out, 'model.safetensors')).tensors;
  assert.equal(st.size, 12);
  const src = (n: string) => tensors.find((t) => t.name === n)!.values;
  assert.deepEqual(
    [...(st.get('model.layers.0.self_attn.q_proj.weight')!.data as Uint16Array)],
    [...permuteRotaryRows(src('blk.0.attn_q.weight'), H, Dh, D)],
  );
  assert.deepEqual(
    [...(st.get('model.layers.0.self_attn.k_proj.weight')!.data as Uint16Array)],
    [...permuteRotaryRows(src('blk.0.attn_k.weight'), Hkv, Dh, D)],
  );
  assert.deepEqual([...(st.get('model.layers.0.self_attn.v_proj.weight')!.data as Uint16Array)], [...src('blk.0.attn_v.weight')]);
  assert.deepEqual([...(st.get('lm_head.weight')!.data as Uint16Array)], [...src('output.weight')]);
  assert.equal(st.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'F16');
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.rope_theta, 500000);
  assert.equal(cfg.rms_norm_eps, 1e-6);
  assert.equal(cfg.max_position_embeddings, 64);
  assert.equal(cfg.num_key_value_heads, 1);
  const tok = loadTokenizer(out);
  assert.deepEqual(await tok.encode('ab'), [1, 8]);
  assert.deepEqual(await tok.encode('ba\n', { addSpecialTokens: false }), [4, 6, 5, 3]);
  assert.equal(await tok.decode([1, 8, 7, 3]), 'ab a\n');
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.chatTemplates.default, '{{ messages[0].content }}');
});

test('rejections: architecture, quantized tensors, missing/extra/misshapen tensors', () => {
  const fails = (name: string, bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => convertGguf(write(name, bytes), join(work, 'never')), isGgufInvalid(re));
  fails('arch.gguf', tinyLlama({ arch: 'gpt2' }).bytes, /architecture 'gpt2'/);
  fails('i32.gguf', tinyLlama({ qType: 26 }).bytes, /type I32; only F32, F16 and BF16/);
  fails('missing.gguf', tinyLlama({ dropTensor: 'blk.0.ffn_up.weight' }).bytes, /missing tensor 'blk.0.ffn_up.weight'/);
  fails('extra.gguf', tinyLlama({ extraTensor: f16Tensor('blk.0.attn_q.bias', [D], 1) }).bytes, /unexpected tensor 'blk.0.attn_q.bias'/);
  // Same byte size, transposed shape.
  const kvsBytes = tinyLlama({ dropTensor: 'blk.0.ffn_gate.weight', extraTensor: f16Tensor('blk.0.ffn_gate.weight', [D, F], 1) }).bytes;
  fails('shape.gguf', kvsBytes, /'blk.0.ffn_gate.weight' has shape \[8, 12\], expected \[12, 8\]/);
});

/** GGUF-style metadata for a byte-level HF tokenizer.json (tokens by id, "a b" merges, types). */
function gpt2Meta(dir: string, pre: string): Map<string, unknown> {
  const j = JSON.parse(readFileSync(sharedPath(`${dir}/tokenizer.json`), 'utf8'));
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [t, id] of Object.entries(j.model.vocab as Record<string, number>)) {
    tokens[id] = t;
    types[id] = 1;
  }
  for (const a of j.added_tokens as { id: number; content: string; special: boolean }[]) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = (j.model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', pre],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', merges],
  ]);
}

for (const [dir, pre, vectors] of [
  ['llama3-tokenizer', 'llama-bpe', 'ggml-vocab-llama-bpe.gguf'],
  ['qwen3-tokenizer', 'qwen2', 'ggml-vocab-qwen2.gguf'],
] as const) {
  test(`gguf gpt2 tokenizer (pre=${pre}) reproduces ${vectors}`, {
    skip: skipUnlessShared(`${dir}/tokenizer.json`, `tokenizer-test-vectors/${vectors}.out`),
  }, async () => {
    const meta = gpt2Meta(dir, pre);
    // tokenizer.chat_template travels into tokenizer_config.json (the source tokenizer's own template).
    const template = JSON.parse(readFileSync(sharedPath(`${dir}/tokenizer_config.json`), 'utf8')).chat_template as string;
    const files = ggufTokenizerFiles(new Map([...meta, ['tokenizer.chat_template', template]]) as never, 4096, 'meta')!;
    const out = join(work, `gguf-${pre}`);
    writeTokenizerFiles(out, files.tokenizerJson, files.tokenizerConfig);
    const tok = loadTokenizer(out);
    assert.equal(tok.chatTemplates.default, template);
    for (const { text, ids } of readVocabVectors(vectors))
      assert.deepEqual(await tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
  });
}

/** HF's llama3 inv_freq scaling, as llama.cpp's per-frequency divisors. */
function llama3Divisors(headDim: number, theta: number, factor: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, i) => {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < 8192 / 4) return 1;
    if (wavelen > 8192) return factor;
    const smooth = (8192 / wavelen - 1) / 3;
    return freq / ((1 - smooth) * (freq / factor) + smooth * freq);
  });
}

test('rope_freqs.weight (Llama 3.1 scaling) becomes rope_scaling llama3; anything else is rejected', () => {
  assert.deepEqual(inferLlama3RopeScaling(llama3Divisors(128, 500000, 8), 128, 500000), {
    rope_type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  });
  assert.equal(
    inferLlama3RopeScaling(
      Float32Array.from(llama3Divisors(128, 500000, 8), (x, i) => (i === 40 ? x * 1.1 : x)),
      128,
      500000,
    ),
    null,
  );
  const divisors = llama3Divisors(Dh, 500000, 32);
  const withFreqs = tinyLlama({
    extraTensor: { name: 'rope_freqs.weight', dims: [Dh / 2], type: 0, data: new Uint8Array(divisors.buffer) },
  });
  const out = join(work, 'rope');
  convertGguf(write('rope.gguf', withFreqs.bytes), out);
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).rope_scaling.factor, 32);
  const wrong = tinyLlama({
    extraTensor: { name: 'rope_freqs.weight', dims: [Dh / 2], type: 0, data: new Uint8Array(Float32Array.of(1, 5).buffer) },
  });
  assert.throws(() => convertGguf(write('rope-bad.gguf', wrong.bytes), join(work, 'never')), isGgufInvalid(/does not match llama3/));
});
