// Conformance: paged varlen causal GQA attention against the reference. Steps mix prefill chunks
// (with earlier context in the cache), fresh prefills and decode tokens with long contexts (split
// kernels), over shuffled block tables, block sizes 16 and odd, GQA 1/2/4/8, head dims 8..128,
// sliding windows, NaN-poisoned unused cache slots, and a multi-layer KV pool addressed by views.
import { RTOL, conformanceSuite, supportsNarrowKvCache, type ConformanceCase, type Harness, type Tolerance } from './helpers.js';
import { buildPaged, type PagedSpec, type SeqSpec } from './paged-scenario.js';

interface AttnSpec extends PagedSpec {
  readonly window?: number;
  /** Scale of q: larger makes the softmax peakier (tests max-subtraction / online rescaling). */
  readonly qScale?: number;
  readonly scale?: number;
}

async function check(h: Harness, spec: AttnSpec): Promise<void> {
  if (spec.cacheDType !== undefined && spec.cacheDType !== 'f32' && !supportsNarrowKvCache(h.be)) {
    h.t.skip(`${h.be.name} (${h.be.computeDType} compute) holds no ${spec.cacheDType} KV cache`);
    return;
  }
  const sc = buildPaged(h, spec);
  const { H, Dh } = spec;
  const q = h.act([sc.numTokens, H, Dh], h.rng.normals(sc.numTokens * H * Dh, spec.qScale ?? 1));
  const out = h.out([sc.numTokens, H, Dh]);
  const scale = spec.scale ?? 1 / Math.sqrt(Dh);
  const window = spec.window ?? 0;
  h.be.attention(out.be, q.be, { k: sc.k.be, v: sc.v.be }, sc.meta.be, scale, window);
  h.ref.attention(out.ref, q.ref, { k: sc.k.ref, v: sc.v.ref }, sc.meta.ref, scale, window);
  await h.expectClose(`out [${sc.numTokens}x${H}x${Dh}]`, out, attnTol(h, scale, Dh, spec.qScale ?? 1));
}

/**
 * Outputs are convex combinations of values ~ N(0, 1): rounding P or out costs ~rtol * |v|. A score
 * error ds moves out by ~ds * |v|, and f32 dot products err in proportion to the score spread
 * (scale * sqrt(Dh) * |q| * |k|), whatever the computeDType, so that part uses the f32 rtol.
 */
function attnTol(h: Harness, scale: number, Dh: number, qScale: number): Tolerance {
  return { rtol: h.rtol, atol: h.rtol + 2 * RTOL.f32 * scale * Math.sqrt(Dh) * qScale };
}

const seqs = (...xs: [number, number][]): SeqSpec[] => xs.map(([ctx, qLen]) => ({ ctx, qLen }));
const describeSeqs = (s: readonly SeqSpec[]): string => s.map((x) => (x.qLen === 1 ? `d${x.ctx}` : `p${x.qLen}/${x.ctx}`)).join(',');

const SPECS: readonly (AttnSpec & { label: string })[] = [
  { label: 'one decode token, one key', seqs: seqs([1, 1]), H: 1, Hkv: 1, Dh: 8, blockSize: 16 },
  { label: 'fresh prefill crossing a block', seqs: seqs([17, 17]), H: 4, Hkv: 4, Dh: 64, blockSize: 16 },
  {
    label: 'mixed step: chunk after context, long decode, short decode, fresh prefill (GQA 4)',
    seqs: seqs([45, 8], [1100, 1], [3, 1], [9, 9], [33, 1]),
    H: 8,
    Hkv: 2,
    Dh: 64,
    blockSize: 16,
  },
  { label: 'GQA 1, Dh 128', seqs: seqs([20, 5], [300, 1], [130, 130]), H: 4, Hkv: 4, Dh: 128, blockSize: 16 },
  { label: 'GQA 2, Dh 48 (stories15M-like), odd block size 7', seqs: seqs([50, 1], [23, 23], [12, 3]), H: 6, Hkv: 3, Dh: 48, blockSize: 7 },
  { label: 'GQA 8, Dh 128, 1500-key decode', seqs: seqs([1500, 1], [70, 6]), H: 16, Hkv: 2, Dh: 128, blockSize: 16 },
  { label: 'GQA 2, Dh 8 (stories260K-like), block size 5', seqs: seqs([1, 1], [40, 2], [256, 1]), H: 8, Hkv: 4, Dh: 8, blockSize: 5 },
  {
    label: 'decode batch of 8',
    seqs: seqs([1, 1], [2, 1], [15, 1], [16, 1], [17, 1], [100, 1], [333, 1], [600, 1]),
    H: 4,
    Hkv: 1,
    Dh: 64,
    blockSize: 16,
  },
  { label: 'prefill batch of 3', seqs: seqs([5, 5], [31, 31], [64, 64]), H: 4, Hkv: 2, Dh: 32, blockSize: 16 },
  { label: 'sliding window 4', seqs: seqs([30, 10], [100, 1], [3, 3]), H: 4, Hkv: 2, Dh: 64, blockSize: 16, window: 4 },
  { label: 'sliding window 256 over a 1200-key decode', seqs: seqs([1200, 1], [300, 2]), H: 4, Hkv: 4, Dh: 64, blockSize: 16, window: 256 },
  {
    label: 'sliding window 16, 40-token prefill, odd blocks',
    seqs: seqs([40, 40], [60, 1]),
    H: 2,
    Hkv: 1,
    Dh: 64,
    blockSize: 9,
    window: 16,
  },
  { label: 'sliding window longer than every context', seqs: seqs([100, 3], [7, 1]), H: 4, Hkv: 2, Dh: 64, blockSize: 16, window: 4096 },
  { label: 'peaky softmax (q x 8)', seqs: seqs([200, 4], [900, 1]), H: 4, Hkv: 2, Dh: 64, blockSize: 16, qScale: 8 },
  { label: 'extreme scores (q x 40)', seqs: seqs([64, 2], [500, 1]), H: 2, Hkv: 2, Dh: 64, blockSize: 16, qScale: 40 },
  { label: 'scale 0.3', seqs: seqs([19, 4], [47, 1]), H: 2, Hkv: 1, Dh: 16, blockSize: 16, scale: 0.3 },
  {
    label: 'NaN in unused slots, -1 in unused table entries',
    seqs: seqs([17, 3], [30, 1], [5, 5], [1030, 1]),
    H: 4,
    Hkv: 2,
    Dh: 64,
    blockSize: 16,
    unused: 'nan',
    tableFill: 'negative',
    spareBlocks: 3,
  },
  {
    label: 'NaN in unused slots, huge ids in unused table entries, block size 16 exact fit',
    seqs: seqs([32, 16], [48, 1]),
    H: 4,
    Hkv: 4,
    Dh: 128,
    blockSize: 16,
    unused: 'nan',
    tableFill: 'huge',
  },
  {
    label: 'NaN in unused slots, odd blocks, zeros in unused table entries',
    seqs: seqs([11, 11], [26, 1]),
    H: 2,
    Hkv: 1,
    Dh: 8,
    blockSize: 3,
    unused: 'nan',
    tableFill: 'zero',
  },
  // f16/bf16 KV caches (f32 compute, converted on read): both sides hold the same bits.
  {
    label: 'f16 cache: decode batch of 8',
    seqs: seqs([1, 1], [2, 1], [15, 1], [16, 1], [17, 1], [100, 1], [333, 1], [600, 1]),
    H: 4,
    Hkv: 1,
    Dh: 64,
    blockSize: 16,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: GQA 2, Dh 48 (stories15M-like), odd block size 7',
    seqs: seqs([50, 1], [23, 23], [12, 3], [190, 1]),
    H: 6,
    Hkv: 3,
    Dh: 48,
    blockSize: 7,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: mixed step, GQA 4',
    seqs: seqs([45, 8], [1100, 1], [3, 1], [9, 9], [33, 1]),
    H: 8,
    Hkv: 2,
    Dh: 64,
    blockSize: 16,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: GQA 8, Dh 128, 1500-key decode',
    seqs: seqs([1500, 1], [70, 6]),
    H: 16,
    Hkv: 2,
    Dh: 128,
    blockSize: 16,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: Dh 8 (stories260K-like), block size 5',
    seqs: seqs([1, 1], [40, 2], [256, 1]),
    H: 8,
    Hkv: 4,
    Dh: 8,
    blockSize: 5,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: sliding window 16, odd blocks',
    seqs: seqs([40, 40], [60, 1]),
    H: 2,
    Hkv: 1,
    Dh: 64,
    blockSize: 9,
    window: 16,
    cacheDType: 'f16',
  },
  {
    label: 'f16 cache: NaN in unused slots, -1 in unused table entries',
    seqs: seqs([17, 3], [30, 1], [5, 5], [1030, 1]),
    H: 4,
    Hkv: 2,
    Dh: 64,
    blockSize: 16,
    unused: 'nan',
    tableFill: 'negative',
    spareBlocks: 3,
    cacheDType: 'f16',
  },
  {
    label: 'bf16 cache: decode and prefill, GQA 2, Dh 48',
    seqs: seqs([50, 1], [23, 23], [300, 1]),
    H: 6,
    Hkv: 3,
    Dh: 48,
    blockSize: 16,
    cacheDType: 'bf16',
  },
  { label: 'bf16 cache: Dh 128', seqs: seqs([20, 5], [300, 1]), H: 4, Hkv: 4, Dh: 128, blockSize: 16, cacheDType: 'bf16' },
];

const cases: ConformanceCase[] = SPECS.map((s) => ({
  name: `${s.label}: H=${s.H} Hkv=${s.Hkv} Dh=${s.Dh} bs=${s.blockSize} [${describeSeqs(s.seqs)}]${s.window ? ` W=${s.window}` : ''}`,
  run: (h: Harness) => check(h, s),
}));

cases.push({
  name: 'kvWrite then attention on layer 1 of a 2-layer KV pool (views), q and out as views',
  run: async (h) => {
    const spec: PagedSpec = { seqs: seqs([20, 6], [41, 1]), H: 4, Hkv: 2, Dh: 32, blockSize: 8, unused: 'nan' };
    const sc = buildPaged(h, spec);
    const { H, Hkv, Dh, blockSize: BS } = spec;
    const layer = sc.numBlocks * BS * Hkv * Dh;
    const T = sc.numTokens;
    // Pool [2 layers, k|v, numBlocks, BS, Hkv, Dh]: layer 0 random, layer 1 = the scenario with this step's slots poisoned.
    const kvLayer1 = await Promise.all([h.ref.read(sc.k.ref), h.ref.read(sc.v.ref)]);
    const row = Hkv * Dh;
    for (const a of kvLayer1) for (const slot of sc.tokenSlots) a.fill(NaN, slot * row, (slot + 1) * row);
    const poolValues = new Float32Array(4 * layer);
    poolValues.set(h.rng.normals(2 * layer), 0);
    poolValues.set(kvLayer1[0]!, 2 * layer);
    poolValues.set(kvLayer1[1]!, 3 * layer);
    const pool = h.act([4 * layer], poolValues);
    const shape = [sc.numBlocks, BS, Hkv, Dh];
    const cache = { k: h.view(pool, shape, 2 * layer), v: h.view(pool, shape, 3 * layer) };
    // This step's keys and values, copied out of the scenario so attention sees the same cache.
    const kNew = new Float32Array(T * row);
    const vNew = new Float32Array(T * row);
    const [kAll, vAll] = await Promise.all([h.ref.read(sc.k.ref), h.ref.read(sc.v.ref)]);
    sc.tokenSlots.forEach((slot, t) => {
      kNew.set(kAll.subarray(slot * row, (slot + 1) * row), t * row);
      vNew.set(vAll.subarray(slot * row, (slot + 1) * row), t * row);
    });
    const k = h.act([T, Hkv, Dh], kNew);
    const v = h.act([T, Hkv, Dh], vNew);
    const slotMapping = h.ints([T], sc.tokenSlots);
    h.be.kvWrite({ k: cache.k.be, v: cache.v.be }, k.be, v.be, slotMapping.be);
    h.ref.kvWrite({ k: cache.k.ref, v: cache.v.ref }, k.ref, v.ref, slotMapping.ref);
    const qBuf = h.act([T + 1, H, Dh], h.rng.normals((T + 1) * H * Dh));
    const outBuf = h.act([T + 2, H, Dh], h.rng.normals((T + 2) * H * Dh));
    const q = h.view(qBuf, [T, H, Dh], H * Dh);
    const out = h.view(outBuf, [T, H, Dh], 2 * H * Dh);
    h.be.attention(out.be, q.be, { k: cache.k.be, v: cache.v.be }, sc.meta.be, 1 / Math.sqrt(Dh), 0);
    h.ref.attention(out.ref, q.ref, { k: cache.k.ref, v: cache.v.ref }, sc.meta.ref, 1 / Math.sqrt(Dh), 0);
    await h.expectClose('out buffer (written rows and sentinels)', outBuf, attnTol(h, 1 / Math.sqrt(Dh), Dh, 1));
    await h.expectClose('kv pool (both layers)', pool, h.tol(1));
  },
});

// Batch invariance (CPU): a prefill's query rows equal, bit for bit, the same queries computed one at
// a time as decode steps (qLen 1, seqLen pos + 1) over the same cache. The prefill path takes several
// queries per pass over the keys (attention.cpp queries_reg); this pins it to the one-query order.
for (const [Dh, cacheDType, qLen] of [
  [64, 'f32', 70],
  [128, 'f16', 37],
  [48, 'f32', 23],
  [8, 'bf16', 19],
] as const) {
  cases.push({
    name: `batch invariance: a ${qLen}-query prefill chunk (after 9 keys) = its queries one at a time (Dh ${Dh}, ${cacheDType} cache)`,
    run: async (h) => {
      if (h.be.name !== 'cpu') return h.t.skip('batch invariance is a CPU backend property');
      if (cacheDType !== 'f32' && !supportsNarrowKvCache(h.be)) return h.t.skip(`no ${cacheDType} KV cache`);
      const ctx = qLen + 9;
      const spec: PagedSpec = { seqs: seqs([ctx, qLen]), H: 4, Hkv: 2, Dh, blockSize: 16, ...(cacheDType !== 'f32' ? { cacheDType } : {}) };
      const sc = buildPaged(h, spec);
      const H = 4;
      const qv = h.rng.normals(qLen * H * Dh);
      const q = h.act([qLen, H, Dh], qv);
      const out = h.out([qLen, H, Dh]);
      const scale = 1 / Math.sqrt(Dh);
      h.be.attention(out.be, q.be, { k: sc.k.be, v: sc.v.be }, sc.meta.be, scale, 0);
      const all = await h.be.read(out.be);
      const row = H * Dh;
      for (let j = 0; j < qLen; j++) {
        const q1 = h.act([1, H, Dh], qv.subarray(j * row, (j + 1) * row));
        const o1 = h.out([1, H, Dh]);
        const meta = {
          ...sc.meta.be,
          queryStartLoc: h.ints([2], [0, 1]).be,
          seqLens: h.ints([1], [ctx - qLen + j + 1]).be,
          maxQueryLen: 1,
        };
        h.be.attention(o1.be, q1.be, { k: sc.k.be, v: sc.v.be }, meta, scale, 0);
        const one = await h.be.read(o1.be);
        const want = all.subarray(j * row, (j + 1) * row);
        for (let i = 0; i < row; i++)
          if (!Object.is(one[i], want[i])) throw new Error(`query ${j} elem ${i}: alone ${one[i]} vs in the prefill ${want[i]}`);
      }
    },
  });
}

conformanceSuite('attention', cases);
