// Hand-computed cases for the reference backend (the spec itself): each expected value is worked
// out by hand in a comment, so a regression in the reference cannot hide behind "matches itself".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../../src/runtime/reference/reference-backend.js';
import type { AttentionMetadata, Backend, KvLayer, Tensor } from '../../src/runtime/backend.js';
import type { DType } from '../../src/runtime/dtype.js';

function f32(be: Backend, shape: number[], values: number[]): Tensor {
  const t = be.alloc(shape, 'f32');
  be.upload(t, Float32Array.from(values));
  return t;
}
function i32(be: Backend, shape: number[], values: number[]): Tensor {
  const t = be.alloc(shape, 'i32');
  be.upload(t, Int32Array.from(values));
  return t;
}
function close(got: ArrayLike<number>, want: number[], tol = 1e-6): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol, `[${i}] got ${got[i]} want ${want[i]}`);
}
function meta(be: Backend, qsl: number[], seqLens: number[], tables: number[][]): AttentionMetadata {
  const width = Math.max(1, ...tables.map((r) => r.length));
  const flat = tables.flatMap((r) => [...r, ...new Array(width - r.length).fill(-1)]);
  return {
    numSeqs: seqLens.length,
    maxQueryLen: Math.max(0, ...qsl.slice(1).map((q, i) => q - qsl[i]!)),
    maxSeqLen: Math.max(0, ...seqLens),
    queryStartLoc: i32(be, [qsl.length], qsl),
    seqLens: i32(be, [seqLens.length], seqLens),
    blockTables: i32(be, [seqLens.length, width], flat),
  };
}
/** A cache [numBlocks, blockSize, Hkv, Dh] with keys/values written at the given slots (kv row per slot). */
function cache(be: Backend, nb: number, bs: number, hkv: number, dh: number, slots: number[], k: number[][], v: number[][]): KvLayer {
  const c = { k: be.alloc([nb, bs, hkv, dh], 'f32'), v: be.alloc([nb, bs, hkv, dh], 'f32') };
  be.upload(c.k, new Float32Array(nb * bs * hkv * dh));
  be.upload(c.v, new Float32Array(nb * bs * hkv * dh));
  be.kvWrite(c, f32(be, [slots.length, hkv, dh], k.flat()), f32(be, [slots.length, hkv, dh], v.flat()), i32(be, [slots.length], slots));
  return c;
}

test('rmsnorm of a known vector: [3,4,0,0] has rms 2.5', async () => {
  const be = createReferenceBackend();
  const x = f32(be, [2, 4], [3, 4, 0, 0, 2, 2, 2, 2]);
  const w = f32(be, [4], [1, 2, 1, 1]);
  be.rmsnorm(x, x, w, 0); // out aliases x: allowed
  close(await be.read(x), [1.2, 3.2, 0, 0, 1, 2, 1, 1]);
});

test('addRmsnorm updates the residual and normalises it', async () => {
  const be = createReferenceBackend();
  const res = f32(be, [1, 4], [1, 2, 0, 0]);
  const x = f32(be, [1, 4], [2, 2, 0, 0]); // residual becomes [3,4,0,0]
  const w = f32(be, [4], [1, 1, 1, 1]);
  be.addRmsnorm(x, res, x, w, 0);
  close(await be.read(res), [3, 4, 0, 0]);
  close(await be.read(x), [1.2, 1.6, 0, 0]);
});

test('rope rotates each (i, i + Dh/2) pair by position * invFreq[i]', async () => {
  const be = createReferenceBackend();
  // Dh 4, invFreq [1, 0.25]; token 0 at position 3 -> angles 3 and 0.75; token 1 at position 0 -> identity.
  const q = f32(be, [2, 2, 4], [1, 0, 0, 1, 2, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const k = f32(be, [2, 1, 4], [0, 1, 1, 0, 1, 1, 1, 1]);
  be.rope(q, k, i32(be, [2], [3, 0]), f32(be, [2], [1, 0.25]));
  const c3 = Math.cos(3),
    s3 = Math.sin(3),
    c75 = Math.cos(0.75),
    s75 = Math.sin(0.75);
  // head 0, x = [1,0,0,1]: pair0 (a=1,b=0) -> (c3, s3); pair1 (a=0,b=1) -> (-s75, c75)
  // head 1, x = [2,1,0,0]: pair0 (a=2,b=0) -> (2c3, 2s3); pair1 (a=1,b=0) -> (c75, s75)
  close(await be.read(q), [c3, -s75, s3, c75, 2 * c3, c75, 2 * s3, s75, 1, 2, 3, 4, 5, 6, 7, 8]);
  // k x = [0,1,1,0]: pair0 (a=0,b=1) -> (-s3, c3); pair1 (a=1,b=0) -> (c75, s75)
  close(await be.read(k), [-s3, c75, c3, s75, 1, 1, 1, 1]);
});

test('attention over a single key returns its value', async () => {
  const be = createReferenceBackend();
  // Position 0 -> block table entry 0 -> physical block 1 -> slot 1 * 4 + 0 = 4.
  const c = cache(be, 2, 4, 1, 2, [4], [[0.3, -2]], [[7, -1]]);
  const q = f32(be, [1, 1, 2], [10, 10]);
  const out = be.alloc([1, 1, 2], 'f32');
  be.attention(out, q, c, meta(be, [0, 1], [1], [[1]]), 0.5, 0);
  close(await be.read(out), [7, -1]);
});

test('equal scores give the mean of the values; causal prefill sees only earlier keys', async () => {
  const be = createReferenceBackend();
  // One sequence, 3 new tokens, zero queries -> uniform weights over the visible keys.
  const vals = [
    [1, 10],
    [2, 20],
    [6, 60],
  ];
  const c = cache(
    be,
    1,
    4,
    1,
    2,
    [0, 1, 2],
    [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    vals,
  );
  const q = f32(be, [3, 1, 2], [0, 0, 0, 0, 0, 0]);
  const out = be.alloc([3, 1, 2], 'f32');
  be.attention(out, q, c, meta(be, [0, 3], [3], [[0]]), 1, 0);
  close(await be.read(out), [1, 10, 1.5, 15, 3, 30], 1e-5);
});

test('softmax weights: two keys with score gap ln 3 weigh 3:1', async () => {
  const be = createReferenceBackend();
  // k0 = [ln3, 0], k1 = [0, 0], q = [1, 0], scale 1 -> weights 3/4, 1/4.
  const c = cache(
    be,
    1,
    2,
    1,
    2,
    [0, 1],
    [
      [Math.log(3), 0],
      [0, 0],
    ],
    [
      [4, 0],
      [0, 8],
    ],
  );
  const out = be.alloc([1, 1, 2], 'f32');
  be.attention(out, f32(be, [1, 1, 2], [1, 0]), c, meta(be, [0, 1], [2], [[0]]), 1, 0);
  close(await be.read(out), [3, 2], 1e-5);
});

test('GQA maps query head h to kv head h / (H / Hkv)', async () => {
  const be = createReferenceBackend();
  // H 4, Hkv 2: heads 0,1 -> kv head 0 (value [1,1]); heads 2,3 -> kv head 1 (value [2,2]).
  const c = cache(be, 1, 1, 2, 2, [0], [[0, 0, 0, 0]], [[1, 1, 2, 2]]);
  const out = be.alloc([1, 4, 2], 'f32');
  be.attention(out, f32(be, [1, 4, 2], new Array(8).fill(1)), c, meta(be, [0, 1], [1], [[0]]), 1, 0);
  close(await be.read(out), [1, 1, 1, 1, 2, 2, 2, 2]);
});

test('sliding window keeps only the last W keys; varlen sequences with shuffled blocks', async () => {
  const be = createReferenceBackend();
  // Block size 2, 4 blocks. Seq A: 4 keys in blocks [3, 1] (slots 6,7,2,3), values 1,2,3,4.
  // Seq B: 1 key in block 0 (slot 0), value 100.
  const c = cache(be, 4, 2, 1, 1, [6, 7, 2, 3, 0], [[0], [0], [0], [0], [0]], [[1], [2], [3], [4], [100]]);
  const m = meta(be, [0, 2, 3], [4, 1], [[3, 1], [0]]);
  const q = f32(be, [3, 1, 1], [0, 0, 0]);
  const out = be.alloc([3, 1, 1], 'f32');
  // Seq A tokens at positions 2 and 3 (2 new tokens), W 2 -> keys {1,2} and {2,3}; seq B -> its one key.
  be.attention(out, q, c, m, 1, 2);
  close(await be.read(out), [2.5, 3.5, 100], 1e-5);
  be.attention(out, q, c, m, 1, 0); // no window: keys {0,1,2} and {0..3}
  close(await be.read(out), [2, 2.5, 100], 1e-5);
});

test('kvWrite skips negative slots and writes whole rows', async () => {
  const be = createReferenceBackend();
  const c = { k: be.alloc([2, 2, 1, 2], 'f32'), v: be.alloc([2, 2, 1, 2], 'f32') };
  be.upload(c.k, new Float32Array(8).fill(9));
  be.upload(c.v, new Float32Array(8).fill(9));
  be.kvWrite(c, f32(be, [2, 1, 2], [1, 2, 3, 4]), f32(be, [2, 1, 2], [5, 6, 7, 8]), i32(be, [2], [-1, 2]));
  close(await be.read(c.k), [9, 9, 9, 9, 3, 4, 9, 9]);
  close(await be.read(c.v), [9, 9, 9, 9, 7, 8, 9, 9]);
});

test('matmul with f32, f16 and bf16 weights and a bias', async () => {
  for (const dt of ['f32', 'f16', 'bf16'] as DType[]) {
    const be = createReferenceBackend();
    const x = f32(be, [2, 3], [1, 2, 3, -1, 0, 0.5]);
    const w = be.alloc([2, 3], dt);
    be.upload(w, Float32Array.from([1.5, -2, 0.25, 0, 1, 1])); // exact in every dtype
    const out = be.alloc([2, 2], 'f32');
    be.matmul(out, x, w, f32(be, [2], [10, 0]));
    // row0: 1.5 - 4 + 0.75 + 10 = 8.25, 2 + 3 = 5; row1: -1.5 + 0.125 + 10 = 8.625, 0.5
    close(await be.read(out), [8.25, 5, 8.625, 0.5]);
  }
});

test('half uploads round to nearest even and raw bits pass through', async () => {
  const be = createReferenceBackend();
  const b = be.alloc([3], 'bf16');
  be.upload(b, Float32Array.from([1.00390625, 1.01171875, -3])); // 1 + 2^-8 ties to 1; 1 + 3*2^-8 ties up to 1 + 2^-6
  close(await be.read(b), [1, 1.015625, -3], 0);
  const h = be.alloc([2], 'f16');
  be.upload(h, Uint16Array.from([0x3c00, 0xc000])); // 1, -2
  close(await be.read(h), [1, -2], 0);
  const table = be.alloc([3, 2], 'bf16');
  be.upload(table, Uint16Array.from([0x3f80, 0x4000, 0x4040, 0x4080, 0xbf80, 0]));
  const out = be.alloc([2, 2], 'f32');
  be.embedding(out, table, i32(be, [2], [2, 0]));
  close(await be.read(out), [-1, 0, 1, 2], 0);
});

test('siluMul, gatherRows, argmax (lowest index on ties)', async () => {
  const be = createReferenceBackend();
  const gu = f32(be, [1, 4], [0, 1, 5, 2]);
  const o = be.alloc([1, 2], 'f32');
  be.siluMul(o, gu);
  close(await be.read(o), [0, 2 / (1 + Math.exp(-1))]);
  const a = f32(be, [2, 2], [2, 4, 6, 8]);
  const g = be.alloc([3, 2], 'f32');
  be.gatherRows(g, a, i32(be, [3], [1, 1, 0]));
  close(await be.read(g), [6, 8, 6, 8, 2, 4]);
  const am = be.alloc([2], 'i32');
  be.argmax(am, f32(be, [2, 4], [1, 7, 7, 3, -5, -5, -6, -9]));
  assert.deepEqual([...(await be.readInt32(am))], [1, 0]);
});

test('views share storage; memoryStats counts live non-view tensors; free and dispose', async () => {
  const be = createReferenceBackend();
  const t = f32(be, [2, 3], [0, 1, 2, 3, 4, 5]);
  const row1 = be.view(t, [1, 3], 3);
  close(await be.read(row1), [3, 4, 5]);
  be.upload(row1, Float32Array.from([7, 8]), 1);
  close(await be.read(t), [0, 1, 2, 3, 7, 8]);
  const h = be.alloc([5], 'bf16');
  assert.deepEqual(be.memoryStats(), { allocatedBytes: 6 * 4 + 5 * 2, numTensors: 2 });
  assert.throws(() => be.free(row1), /view/);
  be.free(h);
  assert.deepEqual(be.memoryStats(), { allocatedBytes: 24, numTensors: 1 });
  assert.throws(() => be.read(h), /after free/);
  be.dispose();
  assert.deepEqual(be.memoryStats(), { allocatedBytes: 0, numTensors: 0 });
  assert.throws(() => be.read(row1), /dispose/);
});

test('rejects foreign tensors, wrong shapes, wrong dtypes and illegal aliasing', () => {
  const be = createReferenceBackend();
  const other = createReferenceBackend();
  const x = f32(be, [2, 4], new Array(8).fill(1));
  const w = f32(be, [4], [1, 1, 1, 1]);
  assert.throws(() => be.rmsnorm(x, x, f32(other, [4], [1, 1, 1, 1]), 1e-5), /foreign/);
  assert.throws(() => be.rmsnorm(be.alloc([2, 3], 'f32'), x, w, 1e-5), /shape/);
  assert.throws(() => be.rmsnorm(x, x, be.alloc([4], 'bf16'), 1e-5), /dtype/);
  assert.throws(() => be.matmul(x, x, f32(be, [4, 4], new Array(16).fill(0)), null), /overlaps/);
  assert.throws(() => be.upload(x, Float32Array.from([1, 2])), /values/);
  assert.throws(() => be.upload(x, Int32Array.from(new Array(8).fill(0))), /Int32Array/);
  assert.throws(() => be.view(x, [3, 3]), /fit/);
  assert.throws(() => be.argmax(be.alloc([2], 'i32'), f32(be, [2, 0], [])), /empty/);
});
