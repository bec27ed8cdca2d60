// Conformance: kvWrite into the paged cache against the reference: shuffled slots across blocks,
// negative slots (padding) skipped, odd block sizes, views; copies must be exact and touch nothing else.
import { conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

interface Spec {
  readonly T: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Share of tokens given a negative slot. */
  readonly padShare: number;
  readonly viewInputs?: boolean;
}

async function check(h: Harness, s: Spec): Promise<void> {
  const row = s.Hkv * s.Dh;
  const numSlots = s.numBlocks * s.blockSize;
  const free = h.rng.shuffle(Array.from({ length: numSlots }, (_, i) => i));
  const slots = Array.from({ length: s.T }, () => (h.rng.next() < s.padShare ? -1 - h.rng.int(0, 3) : free.pop()!));
  const shape = [s.numBlocks, s.blockSize, s.Hkv, s.Dh];
  const cache = { k: h.act(shape, h.rng.normals(numSlots * row)), v: h.act(shape, h.rng.normals(numSlots * row)) };
  const kBuf = h.act([s.T + 1, s.Hkv, s.Dh], h.rng.normals((s.T + 1) * row));
  const vBuf = h.act([s.T + 1, s.Hkv, s.Dh], h.rng.normals((s.T + 1) * row));
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
];

const cases: ConformanceCase[] = SPECS.map((s) => ({
  name: `${s.label}: T=${s.T} Hkv=${s.Hkv} Dh=${s.Dh} blocks=${s.numBlocks}x${s.blockSize}`,
  run: (h: Harness) => check(h, s),
}));

conformanceSuite('kvWrite', cases);
