// Conformance: applyTokenBitmask (grammar masks on the device, runtime/token-bitmask.ts layout)
// against the reference, exact: allowed logits bit for bit, every other one -inf. Masks of every
// density (none, one token, random, all but one, all), rows a subset of the step in any order,
// masks shorter than the row (Qwen3's tokenizer covers 151669 of 151936 rows), V not a multiple of
// 32, -inf and huge logits already in the row. Also: the masked row's allowed set is exactly what
// the host sampler's gatherAllowed compacts, so both paths pick from the same tokens.
import assert from 'node:assert/strict';
import { gatherAllowed } from '../../src/engine/sampler-select.js';
import { bitmaskWords, packTokenBitmasks } from '../../src/runtime/token-bitmask.js';
import { conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

type Density = 'none' | 'one' | 'random' | 'sparse' | 'allButOne' | 'all';

function maskOf(h: Harness, vocabCovered: number, words: number, density: Density): Int32Array {
  const m = new Int32Array(words);
  const set = (v: number): void => {
    m[v >>> 5]! |= 1 << (v & 31);
  };
  if (density === 'one') set(h.rng.int(0, vocabCovered));
  else if (density === 'all' || density === 'allButOne') for (let v = 0; v < vocabCovered; v++) set(v);
  else if (density === 'random')
    for (let v = 0; v < vocabCovered; v++) {
      if (h.rng.next() < 0.5) set(v);
    }
  else if (density === 'sparse') for (let k = 0; k < 40; k++) set(h.rng.int(0, vocabCovered));
  if (density === 'allButOne') {
    const v = h.rng.int(0, vocabCovered);
    m[v >>> 5]! &= ~(1 << (v & 31));
  }
  return m;
}

async function check(h: Harness, S: number, V: number, rows: number[], densities: Density[], maskVocab = V): Promise<void> {
  if (h.be.applyTokenBitmask === undefined) {
    h.t.skip(`${h.be.name}: no applyTokenBitmask`);
    return;
  }
  const x = h.rng.normals(S * V, 4);
  x[0] = -Infinity;
  if (S * V > 3) x[3] = 3e38;
  const l = h.typed([S, V], 'f32', x);
  const words = bitmaskWords(maskVocab);
  const masks = rows.map((_, i) => maskOf(h, maskVocab, words, densities[i % densities.length]!));
  const packed = packTokenBitmasks(
    rows.map((row, i) => ({ row, mask: masks[i]! })),
    bitmaskWords(V),
  );
  h.be.applyTokenBitmask(l.be, packed, rows.length, bitmaskWords(V));
  h.ref.applyTokenBitmask!(l.ref, packed, rows.length, bitmaskWords(V));
  packed.fill(0); // the call may not keep reading the host array
  await h.expectClose(`logits [${S}x${V}] rows ${rows.length}`, l, { rtol: 0, atol: 0 });
  const got = await h.be.read(l.be);
  const ids = new Int32Array(V);
  const vals = new Float32Array(V);
  rows.forEach((r, i) => {
    const row = x.subarray(r * V, (r + 1) * V);
    const n = gatherAllowed(row, masks[i]!, ids, vals);
    const allowed = new Set(ids.subarray(0, n));
    for (let v = 0; v < V; v++) {
      const g = got[r * V + v]!;
      if (allowed.has(v)) assert.ok(Object.is(g, row[v]), `row ${r} token ${v}: allowed, got ${g} want ${row[v]}`);
      else assert.equal(g, -Infinity, `row ${r} token ${v}: masked, got ${g}`);
    }
  });
}

const ALL: Density[] = ['none', 'one', 'random', 'sparse', 'allButOne', 'all'];
const cases: ConformanceCase[] = [
  { name: 'S=1 V=1 one', run: (h) => check(h, 1, 1, [0], ['one']) },
  { name: 'S=1 V=31 none', run: (h) => check(h, 1, 31, [0], ['none']) },
  { name: 'S=2 V=32 all densities', run: (h) => check(h, 2, 32, [1, 0], ALL) },
  { name: 'S=3 V=33 middle row only', run: (h) => check(h, 3, 33, [1], ['random']) },
  { name: 'S=6 V=1000 every density, rows reversed', run: (h) => check(h, 6, 1000, [5, 4, 3, 2, 1, 0], ALL) },
  { name: 'S=4 V=32000 two rows', run: (h) => check(h, 4, 32000, [3, 1], ['sparse', 'random']) },
  { name: 'S=3 V=151936 mask covers 151669 tokens', run: (h) => check(h, 3, 151936, [0, 2], ['all', 'sparse'], 151669) },
  { name: 'S=2 V=128256 no masked rows', run: (h) => check(h, 2, 128256, [], ALL) },
];

conformanceSuite('token-bitmask', cases);
