// Conformance: siluMul (gate first, then up) against the reference, including large gate
// magnitudes, real intermediate sizes (768, 11008), and views of a larger buffer.
import { conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

async function checkSiluMul(h: Harness, T: number, I: number, scale: number): Promise<void> {
  const gu = h.act([T, 2 * I], h.rng.normals(T * 2 * I, scale));
  const out = h.out([T, I]);
  h.be.siluMul(out.be, gu.be);
  h.ref.siluMul(out.ref, gu.ref);
  await h.expectClose(`siluMul out [${T}x${I}] scale ${scale}`, out, h.tol(1));
}

const cases: ConformanceCase[] = [];
for (const [T, I, scale] of [
  [1, 1, 1],
  [3, 17, 1],
  [5, 768, 1],
  [2, 11008, 1],
  [4, 100, 12],
  [1, 172, 1],
] as const) {
  cases.push({ name: `siluMul T=${T} I=${I} scale=${scale}`, run: (h) => checkSiluMul(h, T, I, scale) });
}
cases.push({
  name: 'siluMul, then a residual add into its output, on views; neighbours untouched',
  run: async (h) => {
    const [T, I] = [3, 20];
    const buf = h.act([T * 2 * I + T * I + 7], h.rng.normals(T * 3 * I + 7));
    const gu = h.view(buf, [T, 2 * I], 2);
    const out = h.view(buf, [T, I], 2 + T * 2 * I + 3);
    h.be.siluMul(out.be, gu.be);
    h.ref.siluMul(out.ref, gu.ref);
    const res = h.view(buf, [T, I], 1); // overlaps gateUp, already consumed
    const w = h.act(
      [I],
      h.rng.normals(I, 0.5).map((v) => 1 + v),
    );
    h.be.addRmsnorm(out.be, res.be, out.be, w.be, 1e-5);
    h.ref.addRmsnorm(out.ref, res.ref, out.ref, w.ref, 1e-5);
    await h.expectClose('buffer', buf, h.tol(1));
  },
});

conformanceSuite('elementwise', cases);
