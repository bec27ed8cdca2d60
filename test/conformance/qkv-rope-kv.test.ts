// Conformance: the optional fused ropeKvWriteQkv (split an interleaved qkv row, rope q and k, write k
// and v into the paged cache) against the reference. Backends without the op run its composition
// from core ops (composeRopeKvWriteQkv), which must give the same results. Also: on the reference,
// fused == rope + kvWrite on separately produced q, k, v, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conformanceSuite, Rng, supportsNarrowKvCache, type ConformanceCase, type Harness } from './helpers.js';
import { composeRopeKvWriteQkv, qkvSplitRows } from '../../src/runtime/reference/ops-qkv.js';
import { createReferenceBackend } from '../../src/runtime/select.js';

interface Spec {
  readonly T: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly padShare: number;
  readonly maxPos: number;
  /** f16/bf16: a narrower cache (keys rounded after rope, values on write); default computeDType. */
  readonly cacheDType?: 'f16' | 'bf16';
}

function invFreqTable(dh: number, theta: number): Float32Array {
  const f = new Float32Array(dh / 2);
  for (let i = 0; i < dh / 2; i++) f[i] = 1 / theta ** ((2 * i) / dh);
  return f;
}

async function check(h: Harness, s: Spec): Promise<void> {
  if (s.cacheDType !== undefined && !supportsNarrowKvCache(h.be)) {
    h.t.skip(`${h.be.name} (${h.be.computeDType} compute) holds no ${s.cacheDType} KV cache`);
    return;
  }
  const row = s.Hkv * s.Dh;
  const numSlots = s.numBlocks * s.blockSize;
  const free = h.rng.shuffle(Array.from({ length: numSlots }, (_, i) => i));
  const slots = Array.from({ length: s.T }, () => (h.rng.next() < s.padShare ? -1 : free.pop()!));
  const positions = Array.from({ length: s.T }, () => h.rng.int(0, s.maxPos + 1));
  const shape = [s.numBlocks, s.blockSize, s.Hkv, s.Dh];
  const cacheOf = (values: Float32Array) => (s.cacheDType !== undefined ? h.typed(shape, s.cacheDType, values) : h.act(shape, values));
  const cache = { k: cacheOf(h.rng.normals(numSlots * row)), v: cacheOf(h.rng.normals(numSlots * row)) };
  const width = (s.H + 2 * s.Hkv) * s.Dh;
  const qkv = h.act([s.T, width], h.rng.normals(s.T * width));
  const qOut = h.out([s.T, s.H, s.Dh]);
  const pos = h.ints([s.T], positions);
  const slotMapping = h.ints([s.T], slots);
  const inv = h.typed([s.Dh / 2], 'f32', invFreqTable(s.Dh, 10000));
  if (h.be.ropeKvWriteQkv !== undefined) {
    h.be.ropeKvWriteQkv(qOut.be, qkv.be, { k: cache.k.be, v: cache.v.be }, pos.be, inv.be, slotMapping.be);
  } else {
    const r = qkvSplitRows(s.T, s.H, s.Hkv);
    const scratch = {
      qRows: h.ints([r.q.length], r.q).be,
      kRows: h.ints([r.k.length], r.k).be,
      vRows: h.ints([r.v.length], r.v).be,
      k: h.alloc([s.T, s.Hkv, s.Dh], h.be.computeDType, 'f32').be,
      v: h.alloc([s.T, s.Hkv, s.Dh], h.be.computeDType, 'f32').be,
    };
    composeRopeKvWriteQkv(h.be, qOut.be, qkv.be, { k: cache.k.be, v: cache.v.be }, pos.be, inv.be, slotMapping.be, scratch);
  }
  h.ref.ropeKvWriteQkv!(qOut.ref, qkv.ref, { k: cache.k.ref, v: cache.v.ref }, pos.ref, inv.ref, slotMapping.ref);
  await h.expectClose('qOut', qOut, h.tol(1));
  // A narrow cache: a last-bit difference in the rotated f32 key may round to the neighbouring half value.
  const halfUlp = s.cacheDType === 'f16' ? 2 ** -10 : s.cacheDType === 'bf16' ? 2 ** -7 : 0;
  await h.expectClose('cache.k', cache.k, halfUlp > 0 ? { rtol: halfUlp, atol: 2 ** -24 } : h.tol(1));
  await h.expectClose('cache.v', cache.v, { rtol: 0, atol: 0 });
  await h.expectClose('qkv untouched', qkv, { rtol: 0, atol: 0 });
}

const SPECS: readonly (Spec & { label: string })[] = [
  { label: 'one token', T: 1, H: 1, Hkv: 1, Dh: 2, numBlocks: 1, blockSize: 4, padShare: 0, maxPos: 3 },
  { label: 'decode batch, GQA, llama shape', T: 4, H: 32, Hkv: 8, Dh: 128, numBlocks: 6, blockSize: 16, padShare: 0, maxPos: 4095 },
  { label: 'MHA 7B head shape', T: 1, H: 32, Hkv: 32, Dh: 128, numBlocks: 2, blockSize: 16, padShare: 0, maxPos: 300 },
  { label: 'padding rows (slot -1)', T: 9, H: 6, Hkv: 2, Dh: 48, numBlocks: 4, blockSize: 7, padShare: 0.4, maxPos: 255 },
  { label: 'prefill-sized step, odd heads', T: 33, H: 7, Hkv: 1, Dh: 64, numBlocks: 5, blockSize: 16, padShare: 0.1, maxPos: 2047 },
  { label: 'stories260K shape', T: 3, H: 8, Hkv: 4, Dh: 8, numBlocks: 2, blockSize: 16, padShare: 0, maxPos: 255 },
  {
    label: 'f16 cache, padding rows',
    T: 9,
    H: 6,
    Hkv: 2,
    Dh: 48,
    numBlocks: 4,
    blockSize: 7,
    padShare: 0.4,
    maxPos: 255,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache, decode batch, GQA, llama shape',
    T: 4,
    H: 32,
    Hkv: 8,
    Dh: 128,
    numBlocks: 6,
    blockSize: 16,
    padShare: 0,
    maxPos: 4095,
    cacheDType: 'f16',
  },
  {
    label: 'bf16 cache, prefill-sized step',
    T: 33,
    H: 7,
    Hkv: 1,
    Dh: 64,
    numBlocks: 5,
    blockSize: 16,
    padShare: 0.1,
    maxPos: 2047,
    cacheDType: 'bf16',
  },
];

const cases: ConformanceCase[] = SPECS.map((s) => ({
  name: `${s.label}: T=${s.T} H=${s.H} Hkv=${s.Hkv} Dh=${s.Dh} blocks=${s.numBlocks}x${s.blockSize}`,
  run: (h: Harness) => check(h, s),
}));

conformanceSuite('ropeKvWriteQkv', cases);

test('reference: fused ropeKvWriteQkv equals split q/k/v + rope + kvWrite exactly', async () => {
  const b = createReferenceBackend();
  const rng = new Rng(5);
  const [T, H, Hkv, Dh, NB, BS] = [5, 4, 2, 16, 3, 4];
  const width = (H + 2 * Hkv) * Dh;
  const vals = rng.normals(T * width);
  const mk = (shape: number[], v?: Float32Array) => {
    const t = b.alloc(shape, 'f32');
    b.upload(t, v ?? new Float32Array(t.numel));
    return t;
  };
  const qkv = mk([T, width], vals);
  const pos = b.alloc([T], 'i32');
  b.upload(pos, Int32Array.from([0, 7, 3, 100, 12]));
  const slots = b.alloc([T], 'i32');
  b.upload(slots, Int32Array.from([5, -1, 0, 11, 2]));
  const inv = mk([Dh / 2], invFreqTable(Dh, 10000));
  const fused = { q: mk([T, H, Dh]), cache: { k: mk([NB, BS, Hkv, Dh]), v: mk([NB, BS, Hkv, Dh]) } };
  b.ropeKvWriteQkv!(fused.q, qkv, fused.cache, pos, inv, slots);
  // Unfused: copy q, k, v out of each row on the host, then the core ops.
  const q = new Float32Array(T * H * Dh),
    k = new Float32Array(T * Hkv * Dh),
    v = new Float32Array(T * Hkv * Dh);
  for (let t = 0; t < T; t++) {
    q.set(vals.subarray(t * width, t * width + H * Dh), t * H * Dh);
    k.set(vals.subarray(t * width + H * Dh, t * width + (H + Hkv) * Dh), t * Hkv * Dh);
    v.set(vals.subarray(t * width + (H + Hkv) * Dh, (t + 1) * width), t * Hkv * Dh);
  }
  const uq = mk([T, H, Dh], q),
    uk = mk([T, Hkv, Dh], k),
    uv = mk([T, Hkv, Dh], v);
  const ucache = { k: mk([NB, BS, Hkv, Dh]), v: mk([NB, BS, Hkv, Dh]) };
  b.rope(uq, uk, pos, inv);
  b.kvWrite(ucache, uk, uv, slots);
  assert.deepEqual(await b.read(fused.q), await b.read(uq));
  assert.deepEqual(await b.read(fused.cache.k), await b.read(ucache.k));
  assert.deepEqual(await b.read(fused.cache.v), await b.read(ucache.v));
  b.dispose();
});
