// Conformance: rmsnorm and fused addRmsnorm against the reference: rows of 1, odd widths, real
// model widths (288, 4096), a zero row (eps only), large-magnitude rows, and the allowed aliasing.
import { conformanceSuite, type ConformanceCase, type Harness, type Pair } from './helpers.js';

interface Shape {
  readonly R: number;
  readonly D: number;
  readonly eps: number;
  /** Scale of x (norms must not overflow or lose precision on large activations). */
  readonly xScale?: number;
  readonly zeroRow?: boolean;
}

function inputs(h: Harness, s: Shape): Float32Array {
  const x = h.rng.normals(s.R * s.D, s.xScale ?? 1);
  if (s.zeroRow) x.fill(0, 0, s.D);
  return x;
}

async function checkRmsnorm(h: Harness, s: Shape, alias: boolean): Promise<void> {
  const x = h.act([s.R, s.D], inputs(h, s));
  const w = h.act(
    [s.D],
    h.rng.normals(s.D, 0.5).map((v) => 1 + v),
  );
  const out = alias ? x : h.out([s.R, s.D]);
  h.be.rmsnorm(out.be, x.be, w.be, s.eps);
  h.ref.rmsnorm(out.ref, x.ref, w.ref, s.eps);
  await h.expectClose(`rmsnorm out [${s.R}x${s.D}]${alias ? ' (out = x)' : ''}`, out, h.tol(1));
}

async function checkAddRmsnorm(h: Harness, s: Shape, alias: boolean): Promise<void> {
  const res = h.act([s.R, s.D], inputs(h, s));
  const x = h.act([s.R, s.D], h.rng.normals(s.R * s.D, s.xScale ?? 1));
  const w = h.act(
    [s.D],
    h.rng.normals(s.D, 0.5).map((v) => 1 + v),
  );
  const out = alias ? x : h.out([s.R, s.D]);
  h.be.addRmsnorm(out.be, res.be, x.be, w.be, s.eps);
  h.ref.addRmsnorm(out.ref, res.ref, x.ref, w.ref, s.eps);
  await h.expectClose(`residual [${s.R}x${s.D}]`, res, h.tol(s.xScale ?? 1));
  await h.expectClose(`out [${s.R}x${s.D}]${alias ? ' (out = x)' : ''}`, out, h.tol(1));
}

const SHAPES: readonly Shape[] = [
  { R: 1, D: 1, eps: 1e-5 },
  { R: 1, D: 7, eps: 1e-5 },
  { R: 3, D: 33, eps: 1e-6 },
  { R: 2, D: 100, eps: 1e-5, zeroRow: true },
  { R: 5, D: 288, eps: 1e-5 }, // stories15M
  { R: 4, D: 1000, eps: 1e-6, xScale: 40 },
  { R: 3, D: 4096, eps: 1e-5 }, // 7B
  { R: 17, D: 64, eps: 1e-5 },
];

const name = (s: Shape): string => `R=${s.R} D=${s.D} eps=${s.eps}${s.xScale ? ` x*${s.xScale}` : ''}${s.zeroRow ? ' zero row' : ''}`;
const cases: ConformanceCase[] = [];
for (const s of SHAPES) cases.push({ name: `rmsnorm ${name(s)}`, run: (h) => checkRmsnorm(h, s, false) });
for (const s of SHAPES) cases.push({ name: `addRmsnorm ${name(s)}`, run: (h) => checkAddRmsnorm(h, s, false) });
cases.push({ name: 'rmsnorm in place (out = x)', run: (h) => checkRmsnorm(h, { R: 6, D: 288, eps: 1e-5 }, true) });
cases.push({ name: 'addRmsnorm with out = x', run: (h) => checkAddRmsnorm(h, { R: 6, D: 288, eps: 1e-5 }, true) });
cases.push({
  name: 'rmsnorm and addRmsnorm on row views of larger buffers; other rows untouched',
  run: async (h) => {
    const [R, D] = [3, 48];
    const xBuf = h.act([R + 2, D], h.rng.normals((R + 2) * D));
    const resBuf = h.act([R + 2, D], h.rng.normals((R + 2) * D));
    const outBuf = h.act([R + 2, D], h.rng.normals((R + 2) * D));
    const w = h.act(
      [D],
      h.rng.normals(D, 0.5).map((v) => 1 + v),
    );
    const v = (p: Pair, row: number): Pair => h.view(p, [R, D], row * D);
    h.be.rmsnorm(v(outBuf, 2).be, v(xBuf, 1).be, w.be, 1e-5);
    h.ref.rmsnorm(v(outBuf, 2).ref, v(xBuf, 1).ref, w.ref, 1e-5);
    h.be.addRmsnorm(v(xBuf, 0).be, v(resBuf, 1).be, v(xBuf, 0).be, w.be, 1e-5);
    h.ref.addRmsnorm(v(xBuf, 0).ref, v(resBuf, 1).ref, v(xBuf, 0).ref, w.ref, 1e-5);
    await h.expectClose('outBuf', outBuf, h.tol(1));
    await h.expectClose('resBuf', resBuf, h.tol(1));
    await h.expectClose('xBuf', xBuf, h.tol(1));
  },
});

conformanceSuite('norm', cases);
