// Conformance: rotary embedding (HF rotate_half) in place on q and k, against the reference:
// head dims 2..128, GQA head counts, unordered and large positions, llama-style invFreq tables.
import { conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

interface Shape {
  readonly T: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly maxPos: number;
  readonly theta: number;
}

function invFreqTable(dh: number, theta: number): Float32Array {
  const f = new Float32Array(dh / 2);
  for (let i = 0; i < dh / 2; i++) f[i] = 1 / theta ** ((2 * i) / dh);
  return f;
}

async function check(h: Harness, s: Shape, asViews: boolean): Promise<void> {
  const positions = Array.from({ length: s.T }, (_, t) => (t === 0 ? 0 : t === s.T - 1 ? s.maxPos : h.rng.int(0, s.maxPos + 1)));
  const qn = s.T * s.H * s.Dh;
  const kn = s.T * s.Hkv * s.Dh;
  // With asViews, q and k sit side by side at odd offsets of one buffer (a split QKV workspace).
  const buf = asViews ? h.act([qn + kn + 5], h.rng.normals(qn + kn + 5)) : null;
  const q = buf ? h.view(buf, [s.T, s.H, s.Dh], 3) : h.act([s.T, s.H, s.Dh], h.rng.normals(qn));
  const k = buf ? h.view(buf, [s.T, s.Hkv, s.Dh], 3 + qn) : h.act([s.T, s.Hkv, s.Dh], h.rng.normals(kn));
  const pos = h.ints([s.T], positions);
  const inv = h.typed([s.Dh / 2], 'f32', invFreqTable(s.Dh, s.theta));
  h.be.rope(q.be, k.be, pos.be, inv.be);
  h.ref.rope(q.ref, k.ref, pos.ref, inv.ref);
  if (buf) {
    await h.expectClose('buffer (q, k and untouched edges)', buf, h.tol(1));
    return;
  }
  await h.expectClose(`q [${s.T}x${s.H}x${s.Dh}] maxPos ${s.maxPos}`, q, h.tol(1));
  await h.expectClose(`k [${s.T}x${s.Hkv}x${s.Dh}]`, k, h.tol(1));
}

const SHAPES: readonly Shape[] = [
  { T: 1, H: 1, Hkv: 1, Dh: 2, maxPos: 0, theta: 10000 },
  { T: 1, H: 1, Hkv: 1, Dh: 8, maxPos: 5, theta: 10000 },
  { T: 3, H: 8, Hkv: 4, Dh: 8, maxPos: 255, theta: 10000 }, // stories260K
  { T: 7, H: 6, Hkv: 6, Dh: 48, maxPos: 255, theta: 10000 }, // stories15M
  { T: 5, H: 7, Hkv: 1, Dh: 64, maxPos: 2047, theta: 10000 },
  { T: 4, H: 32, Hkv: 8, Dh: 128, maxPos: 4095, theta: 500000 }, // llama-3-like
  { T: 3, H: 4, Hkv: 2, Dh: 128, maxPos: 32767, theta: 1000000 }, // long positions: the angle is rounded to f32
  { T: 33, H: 2, Hkv: 2, Dh: 64, maxPos: 100, theta: 10000 },
];

const cases: ConformanceCase[] = SHAPES.map((s) => ({
  name: `T=${s.T} H=${s.H} Hkv=${s.Hkv} Dh=${s.Dh} maxPos=${s.maxPos} theta=${s.theta}`,
  run: (h: Harness) => check(h, s, false),
}));
cases.push({
  name: 'q and k are views at odd offsets of one buffer',
  run: (h) => check(h, { T: 3, H: 4, Hkv: 2, Dh: 16, maxPos: 50, theta: 10000 }, true),
});

conformanceSuite('rope', cases);
