// Seeded mutators over model files: each takes the original bytes and a PRNG and returns one mutant
// plus a one-line description (so a failure names what was done). Byte-level operators (truncate,
// flip, lying integer fields) for the binary formats; value-level operators for the JSON files.
// Pure: never touches the disk; the same (seed, input) gives the same mutant.
import { Xoshiro128 } from '../../../src/model/prng.js';

export interface Mutant {
  readonly bytes: Uint8Array;
  readonly what: string;
}

export class Rng {
  private readonly x: Xoshiro128;
  constructor(seed: number) {
    this.x = new Xoshiro128(seed);
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.x.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.x.next() < p;
  }
}

/** Integers a lying length/count/offset field likes to hold. */
const INTERESTING_U64 = [
  0n,
  1n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
  255n,
  65535n,
];
const INTERESTING_I32 = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 65536, 1 << 24, 7, 3];

/** Cut the file at a random point (often inside the header, sometimes one byte short). */
export function truncate(bytes: Uint8Array, rng: Rng): Mutant {
  const at = rng.chance(0.2) ? Math.max(0, bytes.length - 1) : rng.int(bytes.length);
  return { bytes: bytes.slice(0, at), what: `truncate to ${at} of ${bytes.length} bytes` };
}

/** Flip 1-8 random bytes within [lo, hi). */
export function flipBytes(bytes: Uint8Array, rng: Rng, lo = 0, hi = bytes.length): Mutant {
  const out = bytes.slice();
  const n = 1 + rng.int(8);
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = lo + rng.int(Math.max(1, hi - lo));
    if (p >= out.length) continue;
    out[p] = out[p]! ^ (1 + rng.int(255));
    at.push(p);
  }
  return { bytes: out, what: `flip bytes at ${at.join(',')}` };
}

/** Overwrite an aligned-or-not little-endian integer field in [lo, hi) with an interesting value. */
export function lyingInt(bytes: Uint8Array, rng: Rng, lo = 0, hi = bytes.length): Mutant {
  const out = bytes.slice();
  const width = rng.pick([4, 8, 4, 8, 1, 2]);
  const span = Math.max(1, Math.min(hi, out.length) - lo - width);
  const aligned = rng.chance(0.7);
  let at = lo + rng.int(span);
  if (aligned) at -= at % width;
  if (at < 0 || at + width > out.length) return truncate(bytes, rng);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let v: bigint;
  if (width === 8) {
    v = rng.pick(INTERESTING_U64);
    dv.setBigUint64(at, v, true);
  } else if (width === 4) {
    v = BigInt(rng.pick(INTERESTING_I32));
    dv.setInt32(at, Number(v), true);
  } else {
    v = BigInt(rng.int(1 << (8 * width)));
    if (width === 2) dv.setUint16(at, Number(v), true);
    else dv.setUint8(at, Number(v));
  }
  return { bytes: out, what: `u${8 * width} at ${at} := ${v}` };
}

/** Insert or delete a few bytes at a random point (shifts every later offset). */
export function shiftBytes(bytes: Uint8Array, rng: Rng, lo = 0, hi = bytes.length): Mutant {
  const at = lo + rng.int(Math.max(1, Math.min(hi, bytes.length) - lo));
  const n = 1 + rng.int(16);
  if (rng.chance(0.5)) {
    const out = new Uint8Array(bytes.length + n);
    out.set(bytes.subarray(0, at), 0);
    for (let i = 0; i < n; i++) out[at + i] = rng.int(256);
    out.set(bytes.subarray(at), at + n);
    return { bytes: out, what: `insert ${n} bytes at ${at}` };
  }
  const out = new Uint8Array(Math.max(0, bytes.length - n));
  out.set(bytes.subarray(0, at), 0);
  out.set(bytes.subarray(Math.min(bytes.length, at + n)), at);
  return { bytes: out, what: `delete ${n} bytes at ${at}` };
}

/** One of the byte-level operators, biased to [lo, hi) (the header region where lengths live). */
export function mutateBinary(bytes: Uint8Array, rng: Rng, headerEnd: number): Mutant {
  const hi = rng.chance(0.85) ? Math.min(headerEnd, bytes.length) : bytes.length;
  switch (rng.int(4)) {
    case 0:
      return truncate(bytes, rng);
    case 1:
      return flipBytes(bytes, rng, 0, hi);
    case 2:
      return lyingInt(bytes, rng, 0, hi);
    default:
      return shiftBytes(bytes, rng, 0, hi);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON values

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Slot = { parent: Json[] | Record<string, Json>; key: string | number; path: string };

/** Every (parent, key) slot in the document, up to limit (tokenizer.json's vocab is large). */
function slots(root: Json, limit: number, rng: Rng): Slot[] {
  const out: Slot[] = [];
  const walk = (v: Json, path: string): void => {
    if (out.length >= limit || v === null || typeof v !== 'object') return;
    const entries: [string | number, Json][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    // Large containers (vocab, merges): sample a few members instead of walking them all.
    const chosen = entries.length > 32 ? Array.from({ length: 8 }, () => entries[rng.int(entries.length)]!) : entries;
    for (const [k, x] of chosen) {
      out.push({ parent: v, key: k, path: `${path}.${k}` });
      walk(x, `${path}.${k}`);
    }
  };
  walk(root, '$');
  return out;
}

const HOSTILE_VALUES: readonly [string, () => Json][] = [
  ['null', () => null],
  ['true', () => true],
  ['0', () => 0],
  ['-1', () => -1],
  ['1.5', () => 1.5],
  ['2^31', () => 2 ** 31],
  ['2^53', () => 2 ** 53],
  ['1e308', () => 1e308],
  ['-1e308', () => -1e308],
  ['""', () => ''],
  ['"x"', () => 'x'],
  ['long string', () => 'a'.repeat(1 << 16)],
  ['[]', () => []],
  ['{}', () => ({})],
  ['[1e9]', () => [1e9]],
  ['[-1, -1]', () => [-1, -1]],
  ['deep nest', () => deepNest(2000)],
  ['"\\ud800"', () => '\ud800'],
];

function deepNest(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Replace, delete, or retype one value of a JSON document; extraSlots adds named hot spots. */
export function mutateJsonValue(doc: Json, rng: Rng, hot: readonly string[] = []): { doc: Json; what: string } {
  const copy = structuredClone(doc);
  const all = slots(copy, 4000, rng);
  // Half the time aim at a field the loader reads (sizes, ids, the template).
  const hotSlots = all.filter((s) => hot.some((h) => s.path.endsWith(`.${h}`)));
  const pool = hotSlots.length > 0 && rng.chance(0.5) ? hotSlots : all;
  if (pool.length === 0) return { doc: HOSTILE_VALUES[rng.int(HOSTILE_VALUES.length)]![1](), what: 'replace the whole document' };
  const s = rng.pick(pool);
  const setv = (v: Json | undefined): void => {
    if (Array.isArray(s.parent)) {
      if (v === undefined) s.parent.splice(s.key as number, 1);
      else s.parent[s.key as number] = v;
    } else if (v === undefined) delete s.parent[s.key as string];
    else s.parent[s.key as string] = v;
  };
  const old = Array.isArray(s.parent) ? s.parent[s.key as number] : s.parent[s.key as string];
  const r = rng.int(10);
  if (r === 0) {
    setv(undefined);
    return { doc: copy, what: `delete ${s.path}` };
  }
  if (r === 1 && typeof old === 'number') {
    const v = rng.pick([old * 1000, old + 1, old - 1, -old, old * 2 ** 20]);
    setv(v);
    return { doc: copy, what: `${s.path} := ${v}` };
  }
  const [name, make] = HOSTILE_VALUES[rng.int(HOSTILE_VALUES.length)]!;
  setv(make());
  return { doc: copy, what: `${s.path} := ${name}` };
}

/** Text-level JSON damage: cut it, or break a character. */
export function mutateJsonText(text: string, rng: Rng): { text: string; what: string } {
  const at = rng.int(Math.max(1, text.length));
  if (rng.chance(0.5)) return { text: text.slice(0, at), what: `JSON text cut at ${at}` };
  const c = rng.pick(['{', '}', '"', ',', '\\', '\u0000', ']']);
  return { text: text.slice(0, at) + c + text.slice(at + 1), what: `JSON char ${at} := ${JSON.stringify(c)}` };
}

/** Templates that loop, explode or fail: each must end as a typed per-request error within the bound. */
export const HOSTILE_TEMPLATES: readonly [string, string][] = [
  ['huge range loop', '{% for i in range(1000000000) %}x{% endfor %}'],
  ['nested loops', '{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}'],
  ['string doubling', "{% set s = 'xxxxxxxx' %}{% for i in range(64) %}{% set s = s + s %}{% endfor %}{{ s }}"],
  ['recursive macro', '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}'],
  ['raise_exception', "{{ raise_exception('template refuses') }}"],
  ['syntax error', '{% for m in messages %}{{ m.content '],
  ['undefined call', '{{ nothing.at.all() }}'],
  ['unclosed block', '{% if true %}hello'],
  ['big repeat', "{{ 'x' * 1000000000 }}"],
  ['message loop', '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}'],
];
