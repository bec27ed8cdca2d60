// Conformance: kvWrite into the paged cache against the reference: shuffled slots across blocks,
// negative slots (padding) skipped, odd block sizes, views; copies must be exact and touch nothing else.
import type { FloatDType } from '../../src/runtime/dtype.js';
import { conformanceSuite, supportsNarrowKvCache, type ConformanceCase, type Harness } from './helpers.js';

interface Spec {
  readonly T: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Share of tokens given a negative slot. */
  readonly padShare: number;
  readonly viewInputs?: boolean;
  /** f16/bf16: a narrower cache (kvWrite rounds to nearest even); default computeDType. */
  readonly cacheDType?: FloatDType;
}

async function check(h: Harness, s: Spec): Promise<void> {
  if (s.cacheDType !== undefined && !supportsNarrowKvCache(h.be)) {
    h.t.skip(`${h.be.name} (${h.be.computeDType} compute) holds no ${s.cacheDType} KV cache`);
    return;
  }
  const row = s.Hkv * s.Dh;
  const numSlots = s.numBlocks * s.blockSize;
  const free = h.rng.shuffle(Array.from({ length: numSlots }, (_, i) => i));
  const slots = Array.from({ length: s.T }, () => (h.rng.next() < s.padShare ? -1 - h.rng.int(0, 3) : free.pop()!));
  const shape = [s.numBlocks, s.blockSize, s.Hkv, s.Dh];
  const cacheOf = (values: Float32Array) => (s.cacheDType !== undefined ? h.typed(shape, s.cacheDType, values) : h.act(shape, values));
  const cache = { k: cacheOf(h.rng.normals(numSlots * row)), v: cacheOf(h.rng.normals(numSlots * row)) };
  // With a narrow cache, inputs span f16's range edges too: tiny (subnormal / flush to zero), huge (overflow to inf), ties.
  const inputs = (): Float32Array => {
    const x = h.rng.normals((s.T + 1) * row);
    if (s.cacheDType !== undefined)
      for (let i = 0; i < x.length; i += 7) x[i] = x[i]! * [1e-6, 7e4, 1e-9, 3.0e-8, 65520, 1 + 2 ** -11][(i / 7) % 6]!;
    return x;
  };
  const kBuf = h.act([s.T + 1, s.Hkv, s.Dh], inputs());
  const vBuf = h.act([s.T + 1, s.Hkv, s.Dh], inputs());
  const off = s.viewInputs ? row : 0;
  const k = h.view(kBuf, [s.T, s.Hkv, s.Dh], off);
  const v = h.view(vBuf, [s.T, s.Hkv, s.Dh], off);
  const slotMapping = h.ints([s.T], slots);
  h.be.kvWrite({ k: cache.k.be, v: cache.v.be }, k.be, v.be, slotMapping.be);
  h.ref.kvWrite({ k: cache.k.ref, v: cache.v.ref }, k.ref, v.ref, slotMapping.ref);
  await h.expectClose('cache.k', cache.k, { rtol: 0, atol: 0 });
  await h.expectClose('cache.v', cache.v, { rtol: 0, atol: 0 });
}

const SPECS: readonly (Spec & { label: string })[] = [
  { label: 'one token', T: 1, Hkv: 1, Dh: 8, numBlocks: 2, blockSize: 16, padShare: 0 },
  { label: 'prefill-sized step', T: 40, Hkv: 4, Dh: 64, numBlocks: 8, blockSize: 16, padShare: 0 },
  { label: 'with padding slots', T: 23, Hkv: 8, Dh: 128, numBlocks: 6, blockSize: 16, padShare: 0.3 },
  { label: 'odd block size, Dh 48', T: 13, Hkv: 3, Dh: 48, numBlocks: 5, blockSize: 7, padShare: 0.2 },
  { label: 'every token padding', T: 4, Hkv: 2, Dh: 8, numBlocks: 2, blockSize: 4, padShare: 1 },
  { label: 'k and v are views at an offset', T: 9, Hkv: 2, Dh: 32, numBlocks: 3, blockSize: 5, padShare: 0.1, viewInputs: true },
  { label: 'f16 cache (rounds to nearest even)', T: 40, Hkv: 4, Dh: 64, numBlocks: 8, blockSize: 16, padShare: 0.2, cacheDType: 'f16' },
  {
    label: 'f16 cache, odd block size, Dh 48, views',
    T: 13,
    Hkv: 3,
    Dh: 48,
    numBlocks: 5,
    blockSize: 7,
    padShare: 0.2,
    viewInputs: true,
    cacheDType: 'f16',
  },
  { label: 'bf16 cache (rounds to nearest even)', T: 23, Hkv: 8, Dh: 128, numBlocks: 6, blockSize: 16, padShare: 0.3, cacheDType: 'bf16' },
];

const cases: ConformanceCase[] = SPECS.map((s) => ({
  name: `${s.label}: T=${s.T} Hkv=${s.Hkv} Dh=${s.Dh} blocks=${s.numBlocks}x${s.blockSize}`,
  run: (h: Harness) => check(h, s),
}));

conformanceSuite('kvWrite', cases);
