// Conformance: the memory half of the Backend contract against the reference: upload conversions
// (round to nearest even, f16 subnormals and overflow, raw half bits), partial uploads at an
// offset, views of views sharing storage, readInt32 extremes, and memoryStats accounting.
import assert from 'node:assert/strict';
import type { DType, FloatDType } from '../../src/runtime/dtype.js';
import { WEIGHT_DTYPES, conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

/** Values that stress conversion: ties at half precision, f16 subnormals / overflow, signed zero. */
function special(h: Harness): Float32Array {
  const v = [
    0,
    -0,
    1,
    -1,
    1.00390625,
    1.01171875,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    65504,
    65520,
    70000,
    -1e6,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    6.1e-5,
    1e-8,
    3.4e38,
    -1.5e-40,
    0.1,
    1 / 3,
    Math.PI,
    Infinity,
    -Infinity,
  ];
  return Float32Array.from([...v, ...h.rng.normals(37, 100)]);
}

async function checkUpload(h: Harness, dtype: FloatDType): Promise<void> {
  const values = special(h);
  const p = h.alloc([values.length], dtype);
  h.be.upload(p.be, values);
  h.ref.upload(p.ref, values);
  await h.expectClose(`read(${dtype}) after Float32Array upload`, p, { rtol: 0, atol: 0 });
}

async function checkRawBits(h: Harness, dtype: 'f16' | 'bf16'): Promise<void> {
  const noNanInf = dtype === 'f16' ? 0xfbff : 0xff7f; // clears one exponent bit: no NaN/Inf patterns
  const bits = Uint16Array.from({ length: 300 }, (_, i) => (i < 100 ? i * 655 : h.rng.int(0, 65536)) & noNanInf);
  const p = h.alloc([bits.length], dtype);
  h.be.upload(p.be, bits);
  h.ref.upload(p.ref, bits);
  await h.expectClose(`read(${dtype}) after raw-bit upload`, p, { rtol: 0, atol: 0 });
}

async function checkOffsetsAndViews(h: Harness, dtype: DType): Promise<void> {
  const n = 40;
  const base = h.alloc([4, 10], dtype);
  const fill =
    dtype === 'i32' ? Int32Array.from({ length: n }, (_, i) => i * 3 - 50) : Float32Array.from({ length: n }, (_, i) => i * 0.5 - 7);
  for (const [be, t] of [
    [h.be, base.be],
    [h.ref, base.ref],
  ] as const) {
    be.upload(t, fill);
    const row = be.view(t, [2, 10], 10); // rows 1..2
    const inner = be.view(row, [5], 12); // elements 22..26 of the base
    if (dtype === 'i32') be.upload(inner, Int32Array.from([7, 8, 9]), 1);
    else be.upload(inner, Float32Array.from([7, 8, 9]), 1);
    be.upload(t, dtype === 'i32' ? Int32Array.from([-1]) : Float32Array.from([-1]), n - 1);
  }
  if (dtype === 'i32') await h.expectEqualInts('base after view uploads', base);
  else await h.expectClose('base after view uploads', base, { rtol: 0, atol: 0 });
  const view = h.view(base, [3, 3], 5);
  if (dtype === 'i32') await h.expectEqualInts('read of a view', view);
  else await h.expectClose('read of a view', view, { rtol: 0, atol: 0 });
}

const cases: ConformanceCase[] = [];
for (const dt of WEIGHT_DTYPES)
  cases.push({ name: `Float32Array upload into ${dt} rounds like the reference`, run: (h) => checkUpload(h, dt) });
for (const dt of ['f16', 'bf16'] as const) cases.push({ name: `raw ${dt} bits pass through`, run: (h) => checkRawBits(h, dt) });
for (const dt of ['f32', 'bf16', 'f16', 'i32'] as const)
  cases.push({ name: `offset uploads and views of views (${dt})`, run: (h) => checkOffsetsAndViews(h, dt) });
cases.push({
  name: 'readInt32 round-trips extremes',
  run: async (h) => {
    const p = h.ints([6], [0, -1, 2147483647, -2147483648, 123456789, -7]);
    await h.expectEqualInts('i32', p);
  },
});
cases.push({
  name: 'memoryStats: allocs count, views do not, free returns to the baseline',
  run: async (h) => {
    const before = h.be.memoryStats();
    const a = h.be.alloc([1000, 3], 'f32');
    const b = h.be.alloc([77], 'bf16');
    const mid = h.be.memoryStats();
    assert.equal(mid.numTensors, before.numTensors + 2);
    assert.ok(
      mid.allocatedBytes >= before.allocatedBytes + 12000 + 154,
      `allocatedBytes ${mid.allocatedBytes} < ${before.allocatedBytes} + 12154`,
    );
    h.be.view(a, [10, 3], 30);
    assert.deepEqual(h.be.memoryStats(), mid, 'a view changed memoryStats');
    h.be.free(b);
    h.be.free(a);
    await h.be.synchronize();
    assert.deepEqual(h.be.memoryStats(), before);
  },
});

conformanceSuite('memory', cases);
