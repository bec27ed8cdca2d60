// GGUF files run directly for every architecture the loader maps (llama, qwen2 with q/k/v biases,
// qwen3 with q/k norms; llama's interleaved Q/K rows un-permuted, qwen's kept): a seeded tiny model
// written as F32 GGUF gives the same logits as its HF directory, bit for bit on the CPU backend, and
// the same tokenizer encoding; written as Q8_0, it runs within quantization error of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertToGguf } from '../../src/model/convert/to-gguf.js';
import { loadModel, type LoadedModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import type { Backend } from '../../src/runtime/backend.js';
import { ForwardDriver } from './forward-driver.js';

let work = '';
let be: Backend;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'tm-gguf-direct-'));
  be = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
});
after(() => {
  be.dispose();
  rmSync(work, { recursive: true, force: true });
});

async function logits(m: LoadedModel, ids: readonly number[]): Promise<Float32Array> {
  const d = new ForwardDriver(m.model, { maxSeqLen: 64 });
  try {
    return await d.prefill(ids, { allLogits: true });
  } finally {
    d.dispose();
  }
}

for (const preset of ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'] as const) {
  test(`${preset}: F32 GGUF = HF directory (logits bit for bit, tokenizer); Q8_0 GGUF close`, async () => {
    const dir = join(work, preset);
    writeRandomModel(dir, MODEL_PRESETS[preset]!.config, { seed: 21, init: 'well-conditioned' });
    const f32 = join(work, `${preset}.gguf`);
    const q8 = join(work, `${preset}-q8_0.gguf`);
    convertToGguf(dir, f32, { dtype: 'f32' });
    convertToGguf(dir, q8, { type: 'q8_0' });
    const text = 'Hello world, the quick brown fox.';
    const ids = await loadTokenizer(dir).encode(text);
    assert.deepEqual(await loadTokenizer(f32).encode(text), ids);
    const [hf, g, q] = [await loadModel(dir, be), await loadModel(f32, be), await loadModel(q8, be)];
    try {
      assert.equal(g.config.architecture, hf.config.architecture);
      assert.equal(g.config.attentionBias, hf.config.attentionBias);
      assert.equal(g.config.qkNorm, hf.config.qkNorm);
      const [a, b, c] = [await logits(hf, ids), await logits(g, ids), await logits(q, ids)];
      assert.deepEqual(b, a, "F32 GGUF logits equal the HF directory's");
      let worst = 0,
        scale = 0;
      for (let i = 0; i < a.length; i++) {
        worst = Math.max(worst, Math.abs(c[i]! - a[i]!));
        scale = Math.max(scale, Math.abs(a[i]!));
      }
      assert.ok(worst <= 0.05 * Math.max(1, scale), `Q8_0 logits off by ${worst} (max |logit| ${scale})`);
    } finally {
      for (const m of [hf, g, q]) m.model.dispose();
    }
  });
}
