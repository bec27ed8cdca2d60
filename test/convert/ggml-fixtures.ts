// Seeded inputs shared by the ggml format tests (writer, conformance): a small deterministic PRNG.
export interface Rng {
  next(): number;
  normal(): number;
}

/** mulberry32 uniforms in [0, 1) and Box-Muller normals. */
export function mulberry(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) };
}
