// model/quantize.ts: the per-channel int8 quantizer (round half to even, clamp, zero rows, error
// bound |w - q s| <= s/2, non-finite input), and a quantized model on the reference backend matching
// the CPU backend's logits and freeing every tensor it made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isQuantized, quantizeRowsInt8, roundHalfEven } from '../../src/model/quantize.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { ForwardDriver } from './forward-driver.js';
import { TokenmillError } from '../../src/util/errors.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { Rng } from '../conformance/helpers.js';

test('roundHalfEven rounds ties to even', () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 126.5, -126.5].map(roundHalfEven),
    [0, 2, 2, 0, -2, -2, 2, 3, 126, -126],
  );
});

test('quantizeRowsInt8: scales = max|row| / 127, codes within +-127, error <= s/2 per element', () => {
  const rng = new Rng(7);
  const [N, K] = [37, 301];
  const w = rng.normals(N * K, 0.05);
  for (let k = 0; k < K; k++) w[5 * K + k] = 0; // an all-zero row
  const { q, scales } = quantizeRowsInt8(w, N, K);
  assert.equal(scales[5], 0);
  for (let n = 0; n < N; n++) {
    let maxAbs = 0;
    for (let k = 0; k < K; k++) maxAbs = Math.max(maxAbs, Math.abs(w[n * K + k]!));
    assert.equal(scales[n], Math.fround(maxAbs / 127), `scale ${n}`);
    let hitsMax = false;
    for (let k = 0; k < K; k++) {
      const c = q[n * K + k]!;
      assert.ok(c >= -127 && c <= 127, 'code range');
      if (Math.abs(c) === 127) hitsMax = true;
      assert.ok(Math.abs(w[n * K + k]! - c * scales[n]!) <= scales[n]! / 2 + 1e-12, `error bound at ${n},${k}`);
    }
    assert.equal(hitsMax, maxAbs > 0, `row ${n}: the largest magnitude maps to +-127`);
  }
});

test('quantizeRowsInt8: exact ties round to even; non-finite weights are refused', () => {
  const { q, scales } = quantizeRowsInt8(Float32Array.from([127, 0.5, 1.5, -2.5, 63.5]), 1, 5);
  assert.equal(scales[0], 1);
  assert.deepEqual([...q], [127, 0, 2, -2, 64]);
  assert.throws(() => quantizeRowsInt8(Float32Array.from([1, NaN]), 1, 2), TokenmillError);
  assert.throws(() => quantizeRowsInt8(Float32Array.from([Infinity, 0]), 1, 2), TokenmillError);
});

const cpu = cpuAddonAvailable();
test('quantized tiny model: reference and CPU logits agree; dispose frees every tensor', {
  skip: cpu.available ? false : cpu.reason,
}, async () => {
  const work = mkdtempSync(join(tmpdir(), 'tm-q8u-'));
  try {
    writeRandomModel(work, MODEL_PRESETS['tiny-qwen2']!.config, { seed: 3, tokenizer: false }); // q/k/v bias
    const logits: Float32Array[] = [];
    for (const be of [createReferenceBackend(), createCpuBackend({ numThreads: 2 })]) {
      try {
        const m = await loadModel(work, be, { quantize: 'int8' });
        const w = (m.model as unknown as { weights: { layers: { qProj: unknown }[]; lmHead: unknown } }).weights;
        assert.ok(isQuantized(w.layers[0]!.qProj as never) && isQuantized(w.lmHead as never), 'linears quantized');
        const d = new ForwardDriver(m.model, { maxSeqLen: 64 });
        logits.push(await d.prefill([1, 5, 9, 200, 17, 33], { allLogits: true }));
        d.dispose();
        m.model.dispose();
        assert.deepEqual(be.memoryStats(), { allocatedBytes: 0, numTensors: 0 });
      } finally {
        be.dispose();
      }
    }
    let worst = 0;
    for (let i = 0; i < logits[0]!.length; i++) worst = Math.max(worst, Math.abs(logits[0]![i]! - logits[1]![i]!));
    assert.ok(worst < 1e-3, `reference vs cpu logits: worst |diff| ${worst}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
