// Conformance: program order. Ops enqueue and return at once, so an upload() or free() issued after
// an op must not change what that op reads, even with a queue of work still pending in front of it
// (a GPU stream, a CPU command queue). Integer-valued data keeps every dtype exact.
import { conformanceSuite, type ConformanceCase, type Harness, type Pair } from './helpers.js';

const N = 1 << 16;
const QUEUE = 64;

function ints(h: Harness, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => h.rng.int(lo, hi));
}

/** Puts QUEUE dependent adds in flight on a scratch buffer so later work really waits behind them. */
function busy(h: Harness): Pair {
  const acc = h.act([N], new Float32Array(N));
  const one = h.act([N], new Float32Array(N).fill(1));
  for (let i = 0; i < QUEUE; i++) {
    h.be.add(acc.be, acc.be, one.be);
    h.ref.add(acc.ref, acc.ref, one.ref);
  }
  return acc;
}

const cases: ConformanceCase[] = [
  {
    name: 'an upload after an op does not change what the op read',
    run: async (h) => {
      const acc = busy(h);
      const x = h.act([N], ints(h, N, -3, 4));
      const out = h.out([N]);
      for (const [be, o, xx, a] of [[h.be, out.be, x.be, acc.be], [h.ref, out.ref, x.ref, acc.ref]] as const) {
        be.add(o, a, xx); // reads x (old values)
      }
      const fresh = ints(h, N, 10, 20);
      h.be.upload(x.be, fresh);
      h.ref.upload(x.ref, fresh);
      await h.expectClose('out (must use x before the upload)', out, { rtol: 0, atol: 0 });
      await h.expectClose('x (the upload itself)', x, { rtol: 0, atol: 0 });
    },
  },
  {
    name: 'ops chained without reads see each other in order',
    run: async (h) => {
      busy(h);
      const a = h.act([N], ints(h, N, -2, 3));
      const b = h.act([N], ints(h, N, -2, 3));
      for (const be of [h.be, h.ref] as const) {
        const [aa, bb] = be === h.be ? [a.be, b.be] : [a.ref, b.ref];
        for (let i = 0; i < 4; i++) { // |values| stay <= 110: exact in bf16
          be.add(aa, aa, bb); // a += b
          be.add(bb, aa, bb); // b += a
        }
      }
      await h.expectClose('a', a, { rtol: 0, atol: 0 });
      await h.expectClose('b', b, { rtol: 0, atol: 0 });
    },
  },
  {
    name: 'free() right after an op, then a new tensor reusing the memory, does not corrupt the op',
    run: async (h) => {
      busy(h);
      const out = h.out([N]);
      const values = ints(h, N, -5, 6);
      const tmpBe = h.be.alloc([N], h.be.computeDType);
      const tmpRef = h.ref.alloc([N], 'f32');
      h.be.upload(tmpBe, values);
      h.ref.upload(tmpRef, values);
      h.be.add(out.be, tmpBe, tmpBe);
      h.ref.add(out.ref, tmpRef, tmpRef);
      h.be.free(tmpBe);
      h.ref.free(tmpRef);
      const reuse = h.act([N], ints(h, N, 100, 200)); // same size: a caching allocator hands back the same block
      await h.expectClose('out (2 x the freed tensor)', out, { rtol: 0, atol: 0 });
      await h.expectClose('the new tensor', reuse, { rtol: 0, atol: 0 });
    },
  },
];

conformanceSuite('ordering', cases);
