// Conformance: int8-weight matmulQ8 (out = s[n] * x . wq[n]^T + bias) against the reference:
// tile-hostile and real model shapes (stories15M/110M, 7B-like K), decode and prefill T, bias dtypes,
// views, and batch invariance (rows computed alone equal rows computed in a batch, bit for bit).
// The CPU backend quantizes each activation row to int16 codes first (native/cpu/engine_quant.cpp);
// there the reference gets those dequantized rows (actRows16), so the kernel is held to f32 rounding,
// and a separate case bounds the activation rounding against the exact product. Every ISA table runs
// (the VNNI ones have their own matmulQ8 tiles).
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/runtime/backend.js';
import type { FloatDType } from '../../src/runtime/dtype.js';
import { quantizeRowsInt8, roundHalfEven } from '../../src/model/quantize.js';
import { conformanceSuite, type ConformanceCase, type Harness, type Pair } from './helpers.js';

interface Shape {
  readonly T: number;
  readonly K: number;
  readonly N: number;
  readonly bias?: FloatDType;
}

const W_SCALE = 0.05;

/**
 * The CPU's activation rows as it computes with them: d = fround(max|x| / 32767), q = clamp(rne(x *
 * fround(1 / d)), +-32767) (engine_quant.cpp quantize_rows16), returned as q * d (exact in f64,
 * then rounded to f32: within f32 rounding of what the kernel multiplies) and the row scales.
 */
export function actRows16(x: Float32Array, T: number, K: number): { values: Float32Array; d: Float32Array } {
  const values = new Float32Array(T * K);
  const d = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x[t * K + k]!));
    let dx = Math.fround(amax / 32767);
    if (dx < 2 ** -126) dx = 0;
    d[t] = dx;
    if (dx === 0) continue;
    const id = Math.fround(1 / dx);
    for (let k = 0; k < K; k++) {
      const q = Math.min(32767, Math.max(-32767, roundHalfEven(Math.fround(x[t * K + k]! * id))));
      values[t * K + k] = q * dx;
    }
  }
  return { values, d };
}

/** On the CPU backend the reference side of x gets the activations as the kernel quantizes them. */
function asComputed(h: Harness, x: Pair, T: number, K: number): void {
  if (h.be.name === 'cpu') h.ref.upload(x.ref, actRows16(x.values!, T, K).values);
}

/** Quantized weight on both sides: i8 [N, K] + f32 scales [N] from seeded float weights. */
function qweight(h: Harness, N: number, K: number): { wq: Pair; scales: Pair } {
  const w = N * K > 1 << 20 ? h.rng.uniforms(N * K, W_SCALE) : h.rng.normals(N * K, W_SCALE);
  const { q, scales } = quantizeRowsInt8(w, N, K);
  const wq = h.alloc([N, K], 'i8');
  h.be.upload(wq.be, q);
  h.ref.upload(wq.ref, q);
  return { wq, scales: h.typed([N], 'f32', scales) };
}

function run(h: Harness, out: Pair, x: Pair, wq: Pair, scales: Pair, bias: Pair | null): void {
  const mm = (b: typeof h.be, o: Tensor, xx: Tensor, w: Tensor, s: Tensor, bb: Tensor | null): void => {
    assert.ok(b.matmulQ8, `${b.name} has no matmulQ8`);
    b.matmulQ8(o, xx, w, s, bb);
  };
  mm(h.be, out.be, x.be, wq.be, scales.be, bias?.be ?? null);
  mm(h.ref, out.ref, x.ref, wq.ref, scales.ref, bias?.ref ?? null);
}

async function check(h: Harness, s: Shape, outF32: boolean): Promise<void> {
  const x = h.act([s.T, s.K], h.rng.normals(s.T * s.K));
  asComputed(h, x, s.T, s.K);
  const { wq, scales } = qweight(h, s.N, s.K);
  const bias = s.bias ? h.typed([s.N], s.bias, h.rng.normals(s.N)) : null;
  const out = outF32 ? h.out([s.T, s.N], 'f32') : h.out([s.T, s.N]);
  run(h, out, x, wq, scales, bias);
  await h.expectClose(
    `out [${s.T}x${s.N}] K=${s.K}${s.bias ? ` +bias ${s.bias}` : ''}`,
    out,
    h.tol(2 * Math.sqrt(s.K) * W_SCALE + (s.bias ? 1 : 0)),
  );
}

const SHAPES: readonly Shape[] = [
  { T: 1, K: 1, N: 1 },
  { T: 1, K: 7, N: 3 },
  { T: 1, K: 17, N: 13 }, // decode: 1x8 tile + remainders, K tail
  { T: 2, K: 33, N: 65 },
  { T: 3, K: 64, N: 9, bias: 'f32' },
  { T: 4, K: 129, N: 31 }, // first T on the converted (prefill) path
  { T: 5, K: 100, N: 37, bias: 'bf16' },
  { T: 37, K: 96, N: 80 },
  { T: 130, K: 200, N: 97 }, // prefill T with remainders in T, N and K
  { T: 16, K: 64, N: 16 }, // AMX (avx512amx): one 16-token block x one 16-row weight group x one K step
  { T: 37, K: 192, N: 70 }, // AMX: token tail (5) and weight tail (70 = 2 x 32 + 6) on the VNNI tiles
  { T: 48, K: 2048, N: 48, bias: 'f16' }, // AMX: a pair and a single 16-row group, long K
  { T: 128, K: 768, N: 288 }, // stories110M-sized prefill
  { T: 1, K: 288, N: 768 }, // stories15M w1/w3
  { T: 1, K: 768, N: 2304 }, // stories110M qkv-sized
  { T: 2, K: 2048, N: 768 }, // stories110M w2
  { T: 1, K: 4096, N: 48 }, // 7B-like K
  { T: 1, K: 11008, N: 8 }, // 7B-like down_proj K
];

const cases: ConformanceCase[] = [];
for (const s of SHAPES)
  cases.push({ name: `T=${s.T} K=${s.K} N=${s.N}${s.bias ? ` bias ${s.bias}` : ''}`, run: (h) => check(h, s, false) });
cases.push({ name: 'logits T=1 K=288 N=32000 out f32', run: (h) => check(h, { T: 1, K: 288, N: 32000 }, true) });
cases.push({ name: 'logits T=3 K=64 N=512 out f32 (stories260K lm_head)', run: (h) => check(h, { T: 3, K: 64, N: 512 }, true) });

cases.push({
  name: 'all-zero weight rows (scale 0) give exact zeros (+ bias)',
  run: async (h) => {
    const [T, K, N] = [2, 40, 6];
    const x = h.act([T, K], h.rng.normals(T * K));
    const wq = h.alloc([N, K], 'i8');
    const zeros = new Int8Array(N * K);
    h.be.upload(wq.be, zeros);
    h.ref.upload(wq.ref, zeros);
    const scales = h.typed([N], 'f32', new Float32Array(N));
    const bias = h.typed([N], 'f32', h.rng.normals(N));
    const out = h.out([T, N]);
    run(h, out, x, wq, scales, bias);
    await h.expectClose('out', out, h.roundingTol());
  },
});

cases.push({
  name: 'views: x, wq, scales and out at offsets inside larger buffers; neighbours untouched',
  run: async (h) => {
    const [T, K, N] = [3, 40, 24];
    const xBuf = h.act([T + 2, K], h.rng.normals((T + 2) * K));
    asComputed(h, xBuf, T + 2, K);
    const { wq: wBuf, scales: sBuf } = qweight(h, N + 1, K);
    const outBuf = h.act([T + 2, N], h.rng.normals((T + 2) * N));
    run(h, h.view(outBuf, [T, N], N), h.view(xBuf, [T, K], K), h.view(wBuf, [N, K], K), h.view(sBuf, [N], 1), null);
    await h.expectClose('outBuf (written rows and sentinels)', outBuf, h.tol(2 * Math.sqrt(K) * W_SCALE));
  },
});

cases.push({
  name: 'activation rounding: within (max|x[t]| / 65534) * s[n] * sum|wq[n]| of the exact product, outlier rows too',
  run: async (h) => {
    const [T, K, N] = [6, 1000, 40];
    const xs = h.rng.normals(T * K);
    xs[1 * K + 17] = 900; // an outlier channel: row 1's codes get coarse, the bound follows max|x|
    for (let k = 0; k < K; k++) xs[2 * K + k] = xs[2 * K + k]! * 1e-30; // tiny row (scale near subnormal)
    for (let k = 0; k < K; k++) xs[3 * K + k] = 0;
    const x = h.act([T, K], xs);
    const w = h.rng.normals(N * K, W_SCALE);
    const { q, scales: s } = quantizeRowsInt8(w, N, K);
    const wq = h.alloc([N, K], 'i8');
    h.be.upload(wq.be, q);
    h.ref.upload(wq.ref, q);
    const scales = h.typed([N], 'f32', s);
    const out = h.out([T, N]);
    run(h, out, x, wq, scales, null);
    const got = await h.be.read(out.be);
    const want = await h.ref.read(out.ref);
    const base = h.tol(2 * Math.sqrt(K) * W_SCALE);
    let worst = 0;
    for (let t = 0; t < T; t++) {
      let amax = 0;
      for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x.values![t * K + k]!));
      for (let n = 0; n < N; n++) {
        let a = 0;
        for (let k = 0; k < K; k++) a += Math.abs(q[n * K + k]!);
        const bound = base.atol + base.rtol * Math.abs(want[t * N + n]!) + (amax / 65534) * a * s[n]!;
        const err = Math.abs(got[t * N + n]! - want[t * N + n]!);
        worst = Math.max(worst, err / bound);
        assert.ok(err <= bound, `row ${t} col ${n}: got ${got[t * N + n]}, exact ${want[t * N + n]}, bound ${bound}`);
      }
    }
    h.t.diagnostic(`worst error ${(worst * 100).toFixed(1)}% of the bound`);
  },
});

cases.push({
  name: 'batch invariance: each row alone (decode path) equals the batched result (prefill path) exactly',
  run: async (h) => {
    // CUDA takes different kernels for T <= 8 (GEMV) and T > 8 (dequantize + cuBLASLt), as matmul does.
    if (h.be.name !== 'cpu') return h.t.skip('batch invariance is a CPU backend property');
    for (const [T, K, N] of [
      [9, 300, 70],
      [35, 320, 70], // K % 64 == 0, T >= 16: the batch takes the AMX tiles where the CPU has them
    ] as const) {
      const x = h.act([T, K], h.rng.normals(T * K));
      const { wq, scales } = qweight(h, N, K);
      const all = h.out([T, N]);
      h.be.matmulQ8!(all.be, x.be, wq.be, scales.be, null);
      const batched = await h.be.read(all.be);
      for (let t = 0; t < T; t++) {
        const one = h.out([1, N]);
        h.be.matmulQ8!(one.be, h.be.view(x.be, [1, K], t * K), wq.be, scales.be, null);
        const got = await h.be.read(one.be);
        for (let n = 0; n < N; n++) assert.equal(got[n], batched[t * N + n], `row ${t} col ${n}`);
      }
    }
  },
});

conformanceSuite('matmulQ8', cases, ['avx512amx', 'avx512vnni', 'avx512', 'avx2vnni']);
