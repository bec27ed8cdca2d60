// The native block quantizer (native/cpu/ggml_quantize.cpp, what quantizeMatrix runs where the CPU
// addon is built) writes the bytes of the TS reference (model/convert/ggml-quantize.ts) bit for bit:
// every type, on seeded matrices with extreme scales, zero and signed-zero rows, spikes, constants,
// subnormal and f16-overflowing values, and with 1 or several threads. The native one is what `convert
// to-gguf` and int8-on-load use, so any rounding it did differently would change every file it writes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantizeMatrix } from '../../src/model/convert/ggml-quantize.js';
import { GGML_QUANT_TYPES, GGML_BLOCK } from '../../src/runtime/ggml-format.js';
import { loadCpuAddon, type QuantizeIsa } from '../../src/runtime/native.js';
import { hostileMatrix } from './ggml-fixtures.js';

const addon = loadCpuAddon().addon;
const skip =
  addon === null
    ? `cpu addon unavailable: ${loadCpuAddon().reason}`
    : addon.quantizeGgml === undefined
      ? 'this cpu addon build has no quantizeGgml'
      : false;

/** The ISA copies this CPU runs (the others are named in each test's diagnostics). */
const canRun = (isa: QuantizeIsa): boolean => {
  try {
    addon?.quantizeGgml?.(8, new Float32Array(32), 1, 32, 1, isa);
    return addon?.quantizeGgml !== undefined;
  } catch {
    return false;
  }
};
const ALL_ISAS: readonly QuantizeIsa[] = ['baseline', 'avx2', 'avx512'];
const ISAS = ALL_ISAS.filter(canRun);
const MISSING = ALL_ISAS.filter((i) => !ISAS.includes(i));
const RUNS: readonly [number, QuantizeIsa][] = [[1, 'auto'], [3, 'auto'], ...ISAS.map((i): [number, QuantizeIsa] => [2, i])];

/** Rows the search loops find hard: exact halves, signed zeros, one spike, +-f16 max and beyond, subnormals. */
function edgeMatrix(K: number): { x: Float32Array; N: number } {
  const rows: ((k: number) => number)[] = [
    () => -0,
    (k) => (k % 2 === 0 ? 0 : -0),
    (k) => (k % 32 === 0 ? -0 : 0.5 * (k % 5)),
    (k) => (k === 3 ? 1 : 0),
    (k) => (k === 7 ? -1 : 0),
    () => 3.0,
    () => -3.0,
    (k) => (k % 16) - 8,
    (k) => (k % 32) / 2 - 8,
    (k) => ((k * 7919) % 65) - 32,
    (k) => (k % 3 === 0 ? 70000 : -65504),
    (k) => 1e30 * ((k % 7) - 3),
    (k) => 1e-40 * ((k % 9) - 4),
    (k) => 1e-7 * ((k % 11) - 5),
    (k) => (k % 2 === 0 ? 6e-5 : -6.1e-5),
    (k) => Math.sin(k) * (k % 64 === 0 ? 100 : 1),
  ];
  const x = new Float32Array(rows.length * K);
  rows.forEach((f, n) => {
    for (let k = 0; k < K; k++) x[n * K + k] = f(k);
  });
  return { x, N: rows.length };
}

/** N(0, 0.02) rows with a few outliers, as trained matrices look (64K weights: many search paths). */
function weightsLike(N: number, K: number, seed: number): Float32Array {
  const x = hostileMatrix(N, K, seed);
  for (let i = 0; i < x.length; i++) {
    const n = Math.floor(i / K);
    x[i] = n % 7 === 0 ? x[i]! * 0.02 : Math.fround(Math.sin(i * 0.7 + seed) * 0.02 * (i % 97 === 0 ? 8 : 1));
  }
  return x;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

describe('native ggml quantizer = the TS reference, bit for bit', { skip }, () => {
  for (const type of GGML_QUANT_TYPES) {
    it(`${type}: hostile, edge and weights-like rows; 1 and 3 threads; every ISA copy this CPU runs`, (t) => {
      const K = 512;
      const cases: [string, Float32Array, number][] = [
        ['hostile', hostileMatrix(35, K, 7 + GGML_BLOCK[type].id), 35],
        ['edge', edgeMatrix(K).x, edgeMatrix(K).N],
        ['weights-like', weightsLike(128, K, 11 + GGML_BLOCK[type].id), 128],
      ];
      t.diagnostic(`ISA copies compared: ${ISAS.join(', ')}${MISSING.length ? `; this CPU cannot run ${MISSING.join(', ')}` : ''}`);
      for (const [name, x, N] of cases) {
        const ref = quantizeMatrix(type, x, N, K, { native: false });
        for (const [threads, isa] of RUNS) {
          const got = quantizeMatrix(type, x, N, K, { threads, isa });
          const at = firstDiff(ref, got);
          const row = Math.floor(at / (ref.length / N));
          assert.equal(at, -1, `${type} ${name} (${isa}, ${threads} threads): first differing byte ${at} (row ${row})`);
        }
      }
    });
  }

  it('bad shapes are typed errors before any native call', () => {
    assert.throws(() => quantizeMatrix('Q4_K', new Float32Array(100), 1, 100), /multiple of 256/);
    assert.throws(() => quantizeMatrix('Q8_0', new Float32Array(64), 3, 32), /3 x 32 weights, got 64/);
    assert.throws(
      () =>
        quantizeMatrix(
          'Q8_0',
          Float32Array.from({ length: 32 }, (_, i) => (i === 9 ? NaN : 1)),
          1,
          32,
        ),
      /non-finite weight at element 9/,
    );
    assert.throws(() => addon!.quantizeGgml!(12, new Float32Array(256), 2, 256, 1), /N x K/);
    assert.throws(() => addon!.quantizeGgml!(10, new Float32Array(256), 1, 256, 1), /unsupported type/);
    assert.throws(() => addon!.quantizeGgml!(8, new Float32Array(32), 1, 32, 1, 'sse9' as QuantizeIsa), /isa is auto, baseline/);
  });
});
