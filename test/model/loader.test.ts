// loadModel: typed errors for bad checkpoints (missing tensor, wrong shape, wrong dtype, unknown
// architecture, missing dir), sharded checkpoints, eos merging, deterministic generation, and
// the forward-pass argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/model/loader.js';
import { readSafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors.js';
import { ForwardDriver } from './forward-driver.js';
import { createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';
import { compareLogits, describe, makeTinyModel, tokenSeq } from './tiny-models.js';

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TokenmillError, `expected TokenmillError, got ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected a rejection');
}

/** Rewrite model.safetensors through `edit` (which may drop or replace tensors). */
function rewrite(dir: string, edit: (ts: TensorToWrite[]) => TensorToWrite[]): void {
  const path = join(dir, 'model.safetensors');
  const { tensors } = readSafetensorsFile(path);
  const list: TensorToWrite[] = [...tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: t.data }));
  writeSafetensors(path, edit(list));
}

test('missing tensor -> tensor_missing; wrong shape -> tensor_shape_mismatch; int weight -> safetensors_bad_dtype', async () => {
  const m = makeTinyModel('tiny-qwen2');
  try {
    const b = createReferenceBackend();
    rewrite(m.dir, (ts) => ts.filter((t) => t.name !== 'model.layers.1.self_attn.k_proj.bias'));
    let e = await codeOf(loadModel(m.dir, b));
    assert.equal(e.code, 'tensor_missing');
    assert.match(e.message, /model\.layers\.1\.self_attn\.k_proj\.bias/);
    assert.equal(b.memoryStats().numTensors, 0, 'nothing uploaded before validation');

    const m2 = makeTinyModel('tiny-qwen2');
    try {
      rewrite(m2.dir, (ts) =>
        ts.map((t) => (t.name === 'model.layers.0.mlp.down_proj.weight' ? { ...t, shape: [t.shape[1]!, t.shape[0]!] } : t)),
      );
      e = await codeOf(loadModel(m2.dir, b));
      assert.equal(e.code, 'tensor_shape_mismatch');
      assert.match(e.message, /down_proj/);
      rewrite(m2.dir, (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'I32' } : t)));
      e = await codeOf(loadModel(m2.dir, b));
      assert.ok(['safetensors_bad_dtype', 'tensor_shape_mismatch'].includes(e.code), e.code);
    } finally {
      m2.cleanup();
    }
    const m3 = makeTinyModel('tiny-llama3'); // untied: lm_head required
    try {
      rewrite(m3.dir, (ts) => ts.filter((t) => t.name !== 'lm_head.weight'));
      assert.equal((await codeOf(loadModel(m3.dir, b))).code, 'tensor_missing');
      rewrite(m3.dir, (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'I32' } : t)));
      assert.equal((await codeOf(loadModel(m3.dir, b))).code, 'safetensors_bad_dtype');
    } finally {
      m3.cleanup();
    }
    assert.equal(b.memoryStats().numTensors, 0);
  } finally {
    m.cleanup();
  }
});

test('config and directory errors surface through loadModel', async () => {
  const m = makeTinyModel('tiny-llama');
  try {
    const b = createReferenceBackend();
    assert.equal((await codeOf(loadModel(join(m.dir, 'absent'), b))).code, 'model_not_found');
    const cfgPath = join(m.dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, architectures: ['FalconForCausalLM'] }));
    assert.equal((await codeOf(loadModel(m.dir, b))).code, 'unsupported_architecture');
    const { hidden_size: _h, ...noHidden } = cfg;
    writeFileSync(cfgPath, JSON.stringify(noHidden));
    assert.equal((await codeOf(loadModel(m.dir, b))).code, 'config_missing_field');
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, hidden_size: 128, num_attention_heads: 4 })); // checkpoint says 64
    assert.equal((await codeOf(loadModel(m.dir, b))).code, 'tensor_shape_mismatch');
    writeFileSync(cfgPath, JSON.stringify(cfg));
    rmSync(join(m.dir, 'model.safetensors'));
    assert.equal((await codeOf(loadModel(m.dir, b))).code, 'file_not_found');
    assert.equal(b.memoryStats().numTensors, 0);
  } finally {
    m.cleanup();
  }
});

test('sharded checkpoint loads and gives the same logits; eos ids merge with generation_config', async () => {
  const single = makeTinyModel('tiny-mistral');
  const sharded = makeTinyModel('tiny-mistral', { maxShardBytes: 100_000 });
  try {
    assert.ok(
      JSON.parse(readFileSync(join(sharded.dir, 'model.safetensors.index.json'), 'utf8')).weight_map['lm_head.weight'].startsWith('model-'),
    );
    const tokens = tokenSeq(20, 512, 2);
    const logits: Float32Array[] = [];
    for (const dir of [single.dir, sharded.dir]) {
      const b = createReferenceBackend();
      let last = [0, 0];
      const loaded = await loadModel(dir, b, { maxTokensPerStep: 32, onProgress: (done, total) => (last = [done, total]) });
      assert.ok(last[0] === last[1] && last[1]! > 0, `progress ends complete: ${last.join('/')}`);
      assert.deepEqual(loaded.config.eosTokenIds, [3, 1]); // config.json 3, generation_config [3, 1]
      assert.deepEqual(loaded.generationConfig.eosTokenIds, [3, 1]);
      assert.equal(loaded.config.bosTokenId, 0);
      const drv = new ForwardDriver(loaded.model, { maxSeqLen: 32 });
      logits.push(await drv.prefill(tokens, { allLogits: true }));
      drv.dispose();
      loaded.model.dispose();
      assert.equal(b.memoryStats().numTensors, 0);
    }
    const cmp = compareLogits(logits[1]!, logits[0]!, 0, 0);
    assert.ok(cmp.worstRatio === 0 || cmp.maxAbsErr === 0, describe(cmp));
  } finally {
    single.cleanup();
    sharded.cleanup();
  }
});

test('random models are deterministic: same seed same bytes, other seed other bytes', () => {
  const a = makeTinyModel('tiny-qwen3', { seed: 42, dtype: 'bf16' });
  const b = makeTinyModel('tiny-qwen3', { seed: 42, dtype: 'bf16' });
  const c = makeTinyModel('tiny-qwen3', { seed: 43, dtype: 'bf16' });
  try {
    const read = (d: string): Buffer => readFileSync(join(d, 'model.safetensors'));
    assert.ok(read(a.dir).equals(read(b.dir)));
    assert.ok(!read(a.dir).equals(read(c.dir)));
    assert.equal(readFileSync(join(a.dir, 'config.json'), 'utf8'), readFileSync(join(b.dir, 'config.json'), 'utf8'));
  } finally {
    a.cleanup();
    b.cleanup();
    c.cleanup();
  }
});

test('kvBytesPerToken, allocKvCache shapes, forward argument checks', async () => {
  const m = makeTinyModel('tiny-qwen3');
  try {
    const b = createReferenceBackend();
    const { model, config } = await loadModel(m.dir, b, { maxTokensPerStep: 8, maxLogitsPerStep: 4 });
    assert.equal(model.maxTokensPerStep, 8);
    assert.equal(model.maxLogitsPerStep, 4);
    assert.equal(model.kvBytesPerToken(), 2 * config.numLayers * config.numKvHeads * config.headDim * 4);
    const kv = model.allocKvCache(3, 4);
    assert.equal(kv.length, config.numLayers);
    assert.deepEqual(kv[0]!.k.shape, [3, 4, config.numKvHeads, config.headDim]);
    assert.equal(kv[0]!.k.dtype, 'f32');
    // A narrower KV cache (f32 compute on the reference / CPU): half the bytes per token.
    assert.equal(model.kvBytesPerToken('f16'), 2 * config.numLayers * config.numKvHeads * config.headDim * 2);
    const kv16 = model.allocKvCache(2, 4, 'f16');
    assert.equal(kv16[0]!.v.dtype, 'f16');
    for (const l of kv16) {
      b.free(l.k);
      b.free(l.v);
    }
    for (const l of kv) {
      b.free(l.k);
      b.free(l.v);
    }
    const drv = new ForwardDriver(model, { maxSeqLen: 32 });
    await drv.prefill(tokenSeq(3, 512));
    const held = b.memoryStats();
    await drv.decode(5);
    assert.deepEqual(b.memoryStats(), held, 'forward allocates nothing (workspace allocated once)');
    drv.reset();
    const full = await drv.prefill(tokenSeq(20, 512), {}); // 20 tokens > 8 per step: chunked
    assert.equal(full.length, config.vocabSize);
    drv.reset();
    const all = await drv.prefill(tokenSeq(20, 512), { allLogits: true }); // rows chunked by maxLogitsPerStep
    assert.deepEqual(all.subarray(19 * config.vocabSize), full);
    await assert.rejects(
      drv.prefill(tokenSeq(13, 512)),
      (e: unknown) => e instanceof TokenmillError && e.code === 'context_length_exceeded',
    );
    drv.dispose();
    model.dispose();
    model.dispose(); // idempotent
    assert.equal(b.memoryStats().numTensors, 0);
  } finally {
    m.cleanup();
  }
});

test('weight dtype: stored by default; f32 checkpoints become bf16 on a bf16 backend; explicit option wins', async () => {
  const { resolveWeightDType } = await import('../../src/model/weights.js');
  assert.equal(resolveWeightDType('f32', 'f32'), 'f32');
  assert.equal(resolveWeightDType('bf16', 'f32'), 'bf16');
  assert.equal(resolveWeightDType('f16', 'f32'), 'f16');
  assert.equal(resolveWeightDType('f32', 'bf16'), 'bf16');
  assert.equal(resolveWeightDType('f16', 'bf16'), 'f16');
  assert.equal(resolveWeightDType('f32', 'bf16', 'stored'), 'f32');
  assert.equal(resolveWeightDType('bf16', 'f32', 'f32'), 'f32');
  // An explicit conversion on load (bf16 checkpoint -> f32 weights) gives the same logits.
  const m = makeTinyModel('tiny-qwen2', { dtype: 'bf16' });
  try {
    const tokens = tokenSeq(12, 512, 4);
    const out: Float32Array[] = [];
    for (const weightDType of ['stored', 'f32'] as const) {
      const b = createReferenceBackend();
      const { model } = await loadModel(m.dir, b, { weightDType, maxTokensPerStep: 16 });
      const drv = new ForwardDriver(model, { maxSeqLen: 16 });
      out.push(await drv.prefill(tokens));
      drv.dispose();
      model.dispose();
    }
    const cmp = compareLogits(out[1]!, out[0]!, 1e-5, 1e-5);
    assert.ok(cmp.worstRatio <= 1, describe(cmp));
  } finally {
    m.cleanup();
  }
});

test('kvCacheDType: auto = computeDType, f16/bf16 with f32 compute, rejected where the backend cannot hold it', async () => {
  const { resolveKvCacheDType } = await import('../../src/model/decoder-model.js');
  const m = makeTinyModel('tiny-qwen3');
  try {
    const b = createReferenceBackend();
    const { model } = await loadModel(m.dir, b, { maxTokensPerStep: 8, kvCacheDType: 'f16' });
    assert.equal(model.kvCacheDType, 'f16');
    assert.equal(model.kvBytesPerToken(), model.kvBytesPerToken('f32') / 2);
    const drv = new ForwardDriver(model, { maxSeqLen: 32 });
    const logits = await drv.prefill(tokenSeq(5, 512));
    assert.ok(logits.every((x) => Number.isFinite(x)));
    drv.dispose();
    model.dispose();
    assert.equal(b.memoryStats().numTensors, 0);
    const fake = (name: string, computeDType: 'f32' | 'bf16') =>
      ({ name, computeDType }) as unknown as Parameters<typeof resolveKvCacheDType>[0];
    assert.equal(resolveKvCacheDType(fake('cuda', 'bf16'), 'auto'), 'bf16');
    assert.equal(resolveKvCacheDType(fake('cuda', 'bf16'), 'bf16'), 'bf16');
    assert.throws(
      () => resolveKvCacheDType(fake('cuda', 'bf16'), 'f16'),
      (e: unknown) => e instanceof TokenmillError && /not supported on the cuda backend/.test(e.message),
    );
    assert.throws(
      () => resolveKvCacheDType(fake('cuda', 'f32'), 'f16'),
      (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument',
    );
    assert.equal(resolveKvCacheDType(fake('cpu', 'f32'), 'bf16'), 'bf16');
  } finally {
    m.cleanup();
  }
});
