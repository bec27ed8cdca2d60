// GPU suite (npm run test:gpu): every architecture's seeded tiny model on the CUDA backend vs the
// reference backend: f32 compute tightly, bf16 compute (weights bf16 on both sides) within bf16
// tolerance plus greedy-token agreement. Skips with a reason where CUDA is unavailable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/model/loader.js';
import { TINY_PRESETS } from '../../src/model/model-presets.js';
import { ForwardDriver } from './forward-driver.js';
import type { Backend } from '../../src/runtime/backend.js';
import { createCudaBackend, createReferenceBackend, probeCuda } from '../../src/runtime/select.js';
import { compareLogits, describe, makeTinyModel, tokenSeq } from './tiny-models.js';

const N = 64;
const probe = probeCuda();
const skip = probe.available ? false : `CUDA unavailable: ${probe.reason}`;

async function run(dir: string, backend: Backend, tokens: number[]): Promise<Float32Array> {
  const { model, config } = await loadModel(dir, backend, { maxTokensPerStep: 64, maxLogitsPerStep: 64 });
  const drv = new ForwardDriver(model, { blockSize: 16, maxSeqLen: 128 });
  try {
    const V = config.vocabSize;
    const out = new Float32Array(tokens.length * V);
    out.set(await drv.prefill(tokens.slice(0, N / 2), { allLogits: true }), 0);
    for (let t = N / 2; t < tokens.length; t++) out.set(await drv.decode(tokens[t]!), t * V);
    return out;
  } finally {
    drv.dispose();
    model.dispose();
  }
}

function argmaxAgreement(a: Float32Array, b: Float32Array, V: number): number {
  let same = 0;
  const rows = a.length / V;
  for (let r = 0; r < rows; r++) {
    let ia = 0,
      ib = 0;
    for (let v = 1; v < V; v++) {
      if (a[r * V + v]! > a[r * V + ia]!) ia = v;
      if (b[r * V + v]! > b[r * V + ib]!) ib = v;
    }
    if (ia === ib) same++;
  }
  return same / rows;
}

for (const preset of TINY_PRESETS) {
  for (const computeDType of ['f32', 'bf16'] as const) {
    test(`${preset}: CUDA (${computeDType} compute) vs reference, prefill 32 + decode 32`, { skip }, async () => {
      const m = makeTinyModel(preset, { dtype: computeDType === 'bf16' ? 'bf16' : 'f32' });
      try {
        const tokens = tokenSeq(N, m.config.vocabSize, 9);
        const want = await run(m.dir, createReferenceBackend(), tokens);
        const cuda = createCudaBackend({ dtype: computeDType });
        try {
          const got = await run(m.dir, cuda, tokens);
          assert.equal(cuda.memoryStats().numTensors, 0);
          const [atol, rtol] = computeDType === 'f32' ? [1e-3, 1e-3] : [0.25, 0.05];
          const cmp = compareLogits(got, want, atol, rtol);
          const agree = argmaxAgreement(got, want, m.config.vocabSize);
          console.log(`${preset} cuda ${computeDType} vs reference: ${describe(cmp)}; argmax agreement ${(agree * 100).toFixed(1)}%`);
          assert.ok(cmp.worstRatio <= 1, describe(cmp));
          assert.ok(agree >= (computeDType === 'f32' ? 1 : 0.9), `argmax agreement ${agree}`);
        } finally {
          cuda.dispose();
        }
      } finally {
        m.cleanup();
      }
    });
  }
}
