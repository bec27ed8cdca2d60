// A small seeded PRNG (xoshiro128**, seeded through splitmix32) for per-request sampling: same seed,
// same stream, on every platform. Not cryptographic; never shared between requests.

import { randomInt } from 'node:crypto';

export interface Rng {
  /** The seed this stream started from (what a caller would pass to reproduce it). */
  readonly seed: number;
  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number;
}

/** Largest seed accepted (seeds are JS safe integers, negative ones allowed). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A fresh random seed (used when a request gives none). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 48 - 1);
}

/**
 * A xoshiro128** stream for `seed` (any safe integer). `stream` separates independent streams with
 * the same seed (e.g. the n choices of one request).
 */
export function createRng(seed: number, stream = 0): Rng {
  // Fold the low and high 32 bits of the seed and the stream id into the splitmix state.
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) | 0;
  const st = { s: lo };
  let a = splitmix32(st);
  st.s = (st.s ^ Math.imul(hi, 0x27d4eb2d) ^ Math.imul(stream + 1, 0x165667b1)) | 0;
  let b = splitmix32(st);
  let c = splitmix32(st);
  let d = splitmix32(st);
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point

  function nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  }
  return {
    seed,
    nextUint32,
    nextFloat(): number {
      const hi27 = nextUint32() >>> 5;
      const lo26 = nextUint32() >>> 6;
      return (hi27 * 67108864 + lo26) / 9007199254740992;
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
