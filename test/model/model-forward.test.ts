// Whole-model checks for every architecture on seeded random tiny models (64-token runs):
// reference backend vs an independent dense f64 forward, prefill-all vs token-by-token decode vs
// chunked prefill, and reference vs CPU (skipped with a reason where the addon is missing; CI fails).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/model/loader.js';
import { TINY_PRESETS } from '../../src/model/model-presets.js';
import { ForwardDriver } from './forward-driver.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { denseForward } from './dense-forward.js';
import { compareLogits, describe, makeTinyModel, tokenSeq } from './tiny-models.js';

const N = 64;

/** Logits [N * V] of a 64-token run: prefill `split` tokens, then decode the rest one by one. */
async function run(dir: string, backend: Backend, tokens: number[], split: number, maxTokensPerStep = 64): Promise<Float32Array> {
  const { model, config } = await loadModel(dir, backend, { maxTokensPerStep, maxLogitsPerStep: maxTokensPerStep });
  const drv = new ForwardDriver(model, { blockSize: 8, maxSeqLen: 128 });
  try {
    const V = config.vocabSize;
    const out = new Float32Array(tokens.length * V);
    if (split > 0) out.set(await drv.prefill(tokens.slice(0, split), { allLogits: true }), 0);
    for (let t = split; t < tokens.length; t++) out.set(await drv.decode(tokens[t]!), t * V);
    return out;
  } finally {
    drv.dispose();
    model.dispose();
  }
}

for (const preset of TINY_PRESETS) {
  test(`${preset}: reference backend matches an independent dense f64 forward (64 tokens)`, async () => {
    const m = makeTinyModel(preset);
    try {
      const b = createReferenceBackend();
      const tokens = tokenSeq(N, m.config.vocabSize, 3);
      const got = await run(m.dir, b, tokens, N);
      assert.equal(b.memoryStats().numTensors, 0, 'model + driver dispose return every tensor');
      const dense = denseForward(`${m.dir}/model.safetensors`, m.config, tokens);
      const want = new Float64Array(N * m.config.vocabSize);
      dense.forEach((row, t) => want.set(row, t * m.config.vocabSize));
      const cmp = compareLogits(got, want, 1e-4, 1e-4);
      assert.ok(cmp.worstRatio <= 1, describe(cmp));
      // Non-degenerate: logits spread, argmax varies across positions.
      const argmaxes = new Set(dense.map((r) => r.indexOf(Math.max(...r))));
      assert.ok(argmaxes.size > 8, `argmax varies (${argmaxes.size} distinct)`);
    } finally {
      m.cleanup();
    }
  });

  test(`${preset}: prefill-all == token-by-token decode == chunked prefill (reference)`, async () => {
    const m = makeTinyModel(preset);
    try {
      const tokens = tokenSeq(N, m.config.vocabSize, 5);
      const all = await run(m.dir, createReferenceBackend(), tokens, N);
      const decoded = await run(m.dir, createReferenceBackend(), tokens, 1);
      const chunked = await run(m.dir, createReferenceBackend(), tokens, N, 7);
      const c1 = compareLogits(decoded, all, 1e-4, 1e-4);
      assert.ok(c1.worstRatio <= 1, `decode vs prefill: ${describe(c1)}`);
      const c2 = compareLogits(chunked, all, 1e-4, 1e-4);
      assert.ok(c2.worstRatio <= 1, `chunked vs prefill: ${describe(c2)}`);
    } finally {
      m.cleanup();
    }
  });

  cpuTest(preset, 'f32');
}

// The CPU backend keeps f16/bf16 weights and converts them in registers.
cpuTest('tiny-llama', 'f16');
cpuTest('tiny-qwen3', 'bf16');

function cpuTest(preset: string, dtype: 'f32' | 'f16' | 'bf16'): void {
  const cpu = cpuAddonAvailable();
  const ci = process.env.CI === 'true';
  test(`${preset} (${dtype} weights): reference vs CPU backend (prefill 32 + decode 32)`, {
    skip: cpu.available || ci ? false : `CPU addon unavailable: ${cpu.reason}`,
  }, async () => {
    assert.ok(cpu.available, `CPU addon required in CI: ${cpu.reason}`);
    const m = makeTinyModel(preset, { dtype });
    try {
      const tokens = tokenSeq(N, m.config.vocabSize, 9);
      const want = await run(m.dir, createReferenceBackend(), tokens, N / 2);
      const backend = createCpuBackend({ numThreads: 2 });
      try {
        const got = await run(m.dir, backend, tokens, N / 2);
        const cmp = compareLogits(got, want, 2e-4, 2e-4);
        console.log(`${preset} ${dtype} cpu vs reference: ${describe(cmp)}`);
        assert.ok(cmp.worstRatio <= 1, describe(cmp));
        assert.equal(backend.memoryStats().numTensors, 0);
      } finally {
        backend.dispose();
      }
    } finally {
      m.cleanup();
    }
  });
}

for (const dtype of ['f16', 'bf16'] as const) {
  test(`tiny-llama3 stored as ${dtype}: weights stay ${dtype} and match the dense forward`, async () => {
    const m = makeTinyModel('tiny-llama3', { dtype });
    try {
      const b = createReferenceBackend();
      const { model, config } = await loadModel(m.dir, b, { maxTokensPerStep: 16, maxLogitsPerStep: 16 });
      assert.equal(config.torchDType, dtype);
      const big = b.memoryStats().allocatedBytes;
      const drv = new ForwardDriver(model, { maxSeqLen: 16 });
      const tokens = tokenSeq(16, config.vocabSize, 11);
      const got = await drv.prefill(tokens, { allLogits: true });
      drv.dispose();
      model.dispose();
      assert.equal(b.memoryStats().numTensors, 0);
      const want = new Float64Array(16 * config.vocabSize);
      denseForward(`${m.dir}/model.safetensors`, config, tokens).forEach((r, t) => want.set(r, t * config.vocabSize));
      const cmp = compareLogits(got, want, 1e-4, 1e-4);
      assert.ok(cmp.worstRatio <= 1, describe(cmp));
      // Half-precision weights occupy about half the f32 bytes.
      const f32 = makeTinyModel('tiny-llama3');
      try {
        const b32 = createReferenceBackend();
        const l32 = await loadModel(f32.dir, b32, { maxTokensPerStep: 16, maxLogitsPerStep: 16 });
        assert.ok(big < 0.7 * b32.memoryStats().allocatedBytes, `${big} vs ${b32.memoryStats().allocatedBytes}`);
        l32.model.dispose();
      } finally {
        f32.cleanup();
      }
    } finally {
      m.cleanup();
    }
  });
}
