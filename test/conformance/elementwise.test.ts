// Conformance: siluMul (gate first, then up) and add against the reference, including large gate
// magnitudes, real intermediate sizes (768, 11008), and the allowed aliasing of add (out = a / b).
import { conformanceSuite, type ConformanceCase, type Harness, type Pair } from './helpers.js';

async function checkSiluMul(h: Harness, T: number, I: number, scale: number): Promise<void> {
  const gu = h.act([T, 2 * I], h.rng.normals(T * 2 * I, scale));
  const out = h.out([T, I]);
  h.be.siluMul(out.be, gu.be);
  h.ref.siluMul(out.ref, gu.ref);
  await h.expectClose(`siluMul out [${T}x${I}] scale ${scale}`, out, h.tol(1));
}

type AliasMode = 'none' | 'a' | 'b' | 'both';

async function checkAdd(h: Harness, shape: number[], alias: AliasMode): Promise<void> {
  const n = shape.reduce((x, y) => x * y, 1);
  const a = h.act(shape, h.rng.normals(n));
  const b = alias === 'both' ? a : h.act(shape, h.rng.normals(n));
  const out: Pair = alias === 'a' || alias === 'both' ? a : alias === 'b' ? b : h.out(shape);
  h.be.add(out.be, a.be, b.be);
  h.ref.add(out.ref, a.ref, b.ref);
  await h.expectClose(`add out [${shape.join('x')}] alias ${alias}`, out, h.roundingTol());
}

const cases: ConformanceCase[] = [];
for (const [T, I, scale] of [[1, 1, 1], [3, 17, 1], [5, 768, 1], [2, 11008, 1], [4, 100, 12], [1, 172, 1]] as const) {
  cases.push({ name: `siluMul T=${T} I=${I} scale=${scale}`, run: (h) => checkSiluMul(h, T, I, scale) });
}
for (const shape of [[1], [3, 5], [7, 288], [1, 4096], [2, 3, 7]]) {
  cases.push({ name: `add [${shape.join('x')}]`, run: (h) => checkAdd(h, shape, 'none') });
}
for (const alias of ['a', 'b', 'both'] as const) {
  cases.push({ name: `add with out = ${alias === 'both' ? 'a = b' : alias}`, run: (h) => checkAdd(h, [5, 33], alias) });
}
cases.push({
  name: 'siluMul and add on views; neighbours untouched',
  run: async (h) => {
    const [T, I] = [3, 20];
    const buf = h.act([T * 2 * I + T * I + 7], h.rng.normals(T * 3 * I + 7));
    const gu = h.view(buf, [T, 2 * I], 2);
    const out = h.view(buf, [T, I], 2 + T * 2 * I + 3);
    h.be.siluMul(out.be, gu.be);
    h.ref.siluMul(out.ref, gu.ref);
    const a = h.view(buf, [T, I], 1);
    h.be.add(out.be, out.be, a.be);
    h.ref.add(out.ref, out.ref, a.ref);
    await h.expectClose('buffer', buf, h.tol(1));
  },
});

conformanceSuite('elementwise', cases);
