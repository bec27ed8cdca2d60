// Conformance: matmul out = x . w^T (+ bias) against the reference, for every weight dtype, tile-hostile
// and real model shapes (stories15M 288/768/32000, 7B-like K 4096/11008), f32 and computeDType outputs.
import type { FloatDType } from '../../src/runtime/dtype.js';
import { WEIGHT_DTYPES, conformanceSuite, type ConformanceCase, type Harness } from './helpers.js';

interface Shape {
  readonly T: number;
  readonly K: number;
  readonly N: number;
  readonly bias?: boolean;
}

const W_SCALE = 0.05;

async function check(h: Harness, s: Shape, wDType: FloatDType, outF32: boolean): Promise<void> {
  const x = h.act([s.T, s.K], h.rng.normals(s.T * s.K));
  const numW = s.N * s.K;
  const w = h.typed([s.N, s.K], wDType, numW > 1 << 20 ? h.rng.uniforms(numW, W_SCALE) : h.rng.normals(numW, W_SCALE));
  const bias = s.bias ? h.act([s.N], h.rng.normals(s.N)) : null;
  const out = outF32 ? h.out([s.T, s.N], 'f32') : h.out([s.T, s.N]);
  h.be.matmul(out.be, x.be, w.be, bias?.be ?? null);
  h.ref.matmul(out.ref, x.ref, w.ref, bias?.ref ?? null);
  // Typical |out| ~ sqrt(K) * rms(x) * rms(w); rounding in a K-term reduction scales with it.
  await h.expectClose(
    `out [${s.T}x${s.N}] K=${s.K} w=${wDType}${s.bias ? ' +bias' : ''}`,
    out,
    h.tol(2 * Math.sqrt(s.K) * W_SCALE + (s.bias ? 1 : 0)),
  );
}

const SHAPES: readonly Shape[] = [
  { T: 1, K: 1, N: 1 },
  { T: 1, K: 7, N: 3 },
  { T: 3, K: 17, N: 5 },
  { T: 5, K: 33, N: 65 },
  { T: 37, K: 96, N: 80 },
  { T: 9, K: 129, N: 31 },
  { T: 17, K: 64, N: 96, bias: true },
  { T: 130, K: 200, N: 97 }, // prefill-sized T: GEMM tiles with remainders in T, N and K
  { T: 2, K: 288, N: 768 }, // stories15M w1/w3
  { T: 3, K: 768, N: 288 }, // stories15M w2
  { T: 1, K: 4096, N: 48 }, // 7B-like K, few rows of N
  { T: 1, K: 288, N: 771 }, // decode GEMV: 8-row streams with a 3-row remainder, K a multiple of 16 + 2 vectors
  { T: 1, K: 771, N: 45, bias: true }, // decode GEMV: K tail after the unrolled pairs
  { T: 2, K: 11008, N: 8 }, // 7B-like down_proj K
];

const cases: ConformanceCase[] = [];
for (const s of SHAPES) {
  for (const wDType of WEIGHT_DTYPES) {
    cases.push({ name: `T=${s.T} K=${s.K} N=${s.N}${s.bias ? ' bias' : ''} w=${wDType}`, run: (h) => check(h, s, wDType, false) });
  }
}
// Logits: stories15M vocab, out read as f32 whatever the computeDType.
for (const wDType of WEIGHT_DTYPES) {
  cases.push({ name: `logits T=2 K=288 N=32000 w=${wDType} out f32`, run: (h) => check(h, { T: 2, K: 288, N: 32000 }, wDType, true) });
}
cases.push({ name: 'T=4 K=50 N=70 bias out f32', run: (h) => check(h, { T: 4, K: 50, N: 70, bias: true }, 'bf16', true) });

cases.push({
  name: 'views: x, w and out at offsets inside larger buffers; neighbours untouched',
  run: async (h) => {
    const [T, K, N] = [3, 40, 24];
    const xBuf = h.act([T + 2, K], h.rng.normals((T + 2) * K));
    const wBuf = h.typed([N + 1, K], 'bf16', h.rng.normals((N + 1) * K, W_SCALE));
    const outBuf = h.act([T + 2, N], h.rng.normals((T + 2) * N)); // sentinels around the written rows
    const x = h.view(xBuf, [T, K], K);
    const w = h.view(wBuf, [N, K], K);
    const out = h.view(outBuf, [T, N], N);
    h.be.matmul(out.be, x.be, w.be, null);
    h.ref.matmul(out.ref, x.ref, w.ref, null);
    await h.expectClose('outBuf (written rows and sentinels)', outBuf, h.tol(2 * Math.sqrt(K) * W_SCALE));
  },
});

conformanceSuite('matmul', cases);
