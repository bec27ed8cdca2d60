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

/** Seeded [N, K] rows: normal, zero, 1e-3-tiny, 1e3-huge, one spike, constant, all-negative. */
export function hostileMatrix(N: number, K: number, seed: number): Float32Array {
  const r = mulberry(seed);
  const x = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const kind = n % 7;
    for (let k = 0; k < K; k++) {
      const g = r.normal();
      x[n * K + k] =
        kind === 0
          ? g
          : kind === 1
            ? 0
            : kind === 2
              ? g * 1e-3
              : kind === 3
                ? g * 1e3
                : kind === 4
                  ? k === 5
                    ? 50
                    : g * 0.01
                  : kind === 5
                    ? 0.25
                    : -Math.abs(g) - 1;
    }
  }
  return x;
}
