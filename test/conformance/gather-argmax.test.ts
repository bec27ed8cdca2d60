// Conformance: gatherRows (pick the rows whose logits we need) and argmax (greedy sampling, lowest
// index on ties) against the reference, including ties at the max, maxima at either end, -Infinity
// and real vocab sizes (32000, 128256). Both are exact.
import { conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

async function checkGather(h: Harness, T: number, D: number, rows: number[]): Promise<void> {
  const x = h.act([T, D], h.rng.normals(T * D));
  const r = h.ints([rows.length], rows);
  const out = h.out([rows.length, D]);
  h.be.gatherRows(out.be, x.be, r.be);
  h.ref.gatherRows(out.ref, x.ref, r.ref);
  await h.expectClose(`out [${rows.length}x${D}]`, out, { rtol: 0, atol: 0 });
}

type Pattern = 'random' | 'ties' | 'last' | 'first' | 'negative' | 'levels';

function logits(h: Harness, S: number, V: number, pattern: Pattern): Float32Array {
  const x = h.rng.normals(S * V, 3);
  for (let s = 0; s < S; s++) {
    const row = x.subarray(s * V, (s + 1) * V);
    if (pattern === 'ties' && V > 1) {
      const i = h.rng.int(0, V);
      const j = h.rng.int(0, V);
      row[i] = 50;
      row[j] = 50;
    } else if (pattern === 'last') row[V - 1] = 50;
    else if (pattern === 'first') row[0] = 50;
    else if (pattern === 'negative') for (let v = 0; v < V; v++) row[v] = v % 3 === 0 ? -Infinity : -100 - Math.abs(row[v]!);
    else if (pattern === 'levels') for (let v = 0; v < V; v++) row[v] = Math.round(row[v]!); // many ties everywhere
  }
  return x;
}

async function checkArgmax(h: Harness, S: number, V: number, pattern: Pattern): Promise<void> {
  const l = h.typed([S, V], 'f32', logits(h, S, V, pattern));
  const out = h.out([S], 'i32');
  h.be.argmax(out.be, l.be);
  h.ref.argmax(out.ref, l.ref);
  await h.expectEqualInts(`argmax [${S}x${V}] ${pattern}`, out);
}

const cases: ConformanceCase[] = [
  { name: 'gatherRows T=1 D=1', run: (h) => checkGather(h, 1, 1, [0]) },
  { name: 'gatherRows T=9 D=288 repeated rows', run: (h) => checkGather(h, 9, 288, [8, 0, 8, 3]) },
  { name: 'gatherRows T=40 D=4096 last rows of 3 sequences', run: (h) => checkGather(h, 40, 4096, [6, 7, 39]) },
  { name: 'gatherRows T=5 D=33 all rows reversed', run: (h) => checkGather(h, 5, 33, [4, 3, 2, 1, 0]) },
];
const ARGMAX: readonly [number, number, Pattern][] = [
  [1, 1, 'random'],
  [1, 2, 'ties'],
  [3, 7, 'random'],
  [4, 7, 'levels'],
  [2, 100, 'ties'],
  [3, 1000, 'last'],
  [3, 1000, 'first'],
  [2, 513, 'negative'],
  [5, 32000, 'random'],
  [4, 32000, 'ties'],
  [3, 32000, 'levels'],
  [2, 128256, 'ties'],
  [1, 128256, 'last'],
];
for (const [S, V, p] of ARGMAX) cases.push({ name: `argmax S=${S} V=${V} ${p}`, run: (h) => checkArgmax(h, S, V, p) });

conformanceSuite('gather-argmax', cases);
