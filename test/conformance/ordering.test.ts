// Conformance: program order. Ops enqueue and return at once, so an upload() or free() issued after
// an op must not change what that op reads, even with a queue of work still pending in front of it
// (a GPU stream, a CPU command queue). The probe is addRmsnorm's residual path (residual += x, the
// model's residual stream); integer-valued data keeps the residual exact in every dtype, and the
// normalised output is checked with the usual tolerance.
import { conformanceSuite, type ConformanceCase, type Harness, type Pair } from './helpers.js';

const D = 256;
const R = 256;
const N = R * D;
const QUEUE = 64;
const EPS = 1e-5;

function ints(h: Harness, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => h.rng.int(lo, hi));
}

/** residual += x on both sides, writing the normalised rows to `out` (a scratch here). */
function accumulate(h: Harness, out: Pair, residual: Pair, x: Pair, w: Pair): void {
  h.be.addRmsnorm(out.be, residual.be, x.be, w.be, EPS);
  h.ref.addRmsnorm(out.ref, residual.ref, x.ref, w.ref, EPS);
}

interface Busy {
  acc: Pair;
  w: Pair;
  scratch: Pair;
}

/** Puts QUEUE dependent residual adds in flight on a scratch buffer so later work really waits behind them. */
function busy(h: Harness): Busy {
  const acc = h.act([R, D], new Float32Array(N));
  const one = h.act([R, D], new Float32Array(N).fill(1));
  const w = h.act([D], new Float32Array(D).fill(1));
  const scratch = h.out([R, D]);
  for (let i = 0; i < QUEUE; i++) accumulate(h, scratch, acc, one, w);
  return { acc, w, scratch };
}

const cases: ConformanceCase[] = [
  {
    name: 'an upload after an op does not change what the op read',
    run: async (h) => {
      const { acc, w } = busy(h);
      const x = h.act([R, D], ints(h, N, -3, 4));
      const out = h.out([R, D]);
      accumulate(h, out, acc, x, w); // reads x (old values)
      const fresh = ints(h, N, 10, 20);
      h.be.upload(x.be, fresh);
      h.ref.upload(x.ref, fresh);
      await h.expectClose('residual (must use x before the upload)', acc, { rtol: 0, atol: 0 });
      await h.expectClose('normalised out', out, h.tol(1));
      await h.expectClose('x (the upload itself)', x, { rtol: 0, atol: 0 });
    },
  },
  {
    name: 'ops chained without reads see each other in order',
    run: async (h) => {
      const { w, scratch } = busy(h);
      const a = h.act([R, D], ints(h, N, -2, 3));
      const b = h.act([R, D], ints(h, N, -2, 3));
      for (let i = 0; i < 4; i++) {
        // |values| stay <= 110: exact in bf16
        accumulate(h, scratch, a, b, w); // a += b
        accumulate(h, scratch, b, a, w); // b += a
      }
      await h.expectClose('a', a, { rtol: 0, atol: 0 });
      await h.expectClose('b', b, { rtol: 0, atol: 0 });
      await h.expectClose('normalised out of the last step', scratch, h.tol(1));
    },
  },
  {
    name: 'free() right after an op, then a new tensor reusing the memory, does not corrupt the op',
    run: async (h) => {
      const { w, scratch } = busy(h);
      const values = ints(h, N, -5, 6);
      const res = h.act([R, D], values);
      const tmp: Pair = { be: h.be.alloc([R, D], h.be.computeDType), ref: h.ref.alloc([R, D], 'f32') };
      h.be.upload(tmp.be, values);
      h.ref.upload(tmp.ref, values);
      accumulate(h, scratch, res, tmp, w);
      h.be.free(tmp.be);
      h.ref.free(tmp.ref);
      const reuse = h.act([R, D], ints(h, N, 100, 200)); // same size: a caching allocator hands back the same block
      await h.expectClose('residual (2 x the freed tensor)', res, { rtol: 0, atol: 0 });
      await h.expectClose('the new tensor', reuse, { rtol: 0, atol: 0 });
    },
  },
];

conformanceSuite('ordering', cases);
