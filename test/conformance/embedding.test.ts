// Conformance: embedding lookup against the reference for f32/f16/bf16 tables, repeated ids, the
// first and last rows, and real vocab/hidden sizes (stories15M 32000x288, 7B-like D 4096).
import type { FloatDType } from '../../src/runtime/dtype.js';
import { WEIGHT_DTYPES, conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

interface Shape {
  readonly V: number;
  readonly D: number;
  readonly T: number;
}

async function check(h: Harness, s: Shape, dtype: FloatDType): Promise<void> {
  const table = h.typed([s.V, s.D], dtype, s.V * s.D > 1 << 20 ? h.rng.uniforms(s.V * s.D) : h.rng.normals(s.V * s.D));
  const ids = Array.from({ length: s.T }, (_, t) => (t === 0 ? s.V - 1 : t === 1 ? 0 : h.rng.int(0, s.V)));
  if (s.T > 3) ids[3] = ids[2]!; // a repeated id
  const idsT = h.ints([s.T], ids);
  const out = h.out([s.T, s.D]);
  h.be.embedding(out.be, table.be, idsT.be);
  h.ref.embedding(out.ref, table.ref, idsT.ref);
  // A copy: exact, up to rounding into computeDType.
  await h.expectClose(`out [${s.T}x${s.D}] table ${dtype}`, out, h.roundingTol());
}

const SHAPES: readonly Shape[] = [
  { V: 1, D: 1, T: 1 },
  { V: 7, D: 5, T: 6 },
  { V: 512, D: 64, T: 33 }, // stories260K
  { V: 32000, D: 288, T: 5 }, // stories15M
  { V: 100, D: 4096, T: 3 },
];

const cases: ConformanceCase[] = [];
for (const s of SHAPES) {
  for (const dtype of WEIGHT_DTYPES) cases.push({ name: `V=${s.V} D=${s.D} T=${s.T} table=${dtype}`, run: (h) => check(h, s, dtype) });
}

conformanceSuite('embedding', cases);
