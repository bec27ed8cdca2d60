// Rotary inverse frequencies vs hand-computed values (plain, linear, llama3 in all three bands).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeInvFreq } from '../../src/model/rope.js';

function close(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-12, `${what}: got ${got}, want ${want}`);
}

test('plain rope: 1 / theta^(2i/d)', () => {
  const f = computeInvFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: null });
  assert.equal(f.length, 4);
  [1, 0.1, 0.01, 0.001].forEach((w, i) => close(f[i]!, w, `i=${i}`));
});

test('linear scaling divides every frequency by factor', () => {
  const f = computeInvFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: { type: 'linear', factor: 4 } });
  [0.25, 0.025, 0.0025, 0.00025].forEach((w, i) => close(f[i]!, w, `i=${i}`));
});

test('llama3 scaling (Llama 3.1: theta 5e5, factor 8, low 1, high 4, original 8192)', () => {
  const f = computeInvFreq({
    headDim: 128,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  });
  assert.equal(f.length, 64);
  // Values computed by hand (Python, f64): high band kept, low band / 8, medium band interpolated.
  const want: [number, number][] = [
    [0, 1.0],
    [1, 0.8146172338565447],
    [20, 0.016560440080994446],
    [28, 0.0032114459947525913],
    [29, 0.002166570763503359],
    [30, 0.0013718935677611381],
    [32, 0.0005248461609929547],
    [34, 0.00017850781276799638],
    [35, 9.556212353964683e-5],
    [63, 3.068925988914511e-7],
  ];
  for (const [i, w] of want) close(f[i]!, w, `i=${i}`);
  // Monotone decreasing across the bands.
  for (let i = 1; i < 64; i++) assert.ok(f[i]! < f[i - 1]!, `decreasing at ${i}`);
});
