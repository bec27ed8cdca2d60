// Our own matmul kernels: out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]), f32 accumulation.
// (1) GEMV for T <= 8 (decode): one warp per output row n; lanes stride over K in 8-element chunks
//     (16-byte loads for half weights), 4 chunks loaded before first use so several loads are in
//     flight; x chunks come through L1; NT partial sums reduced with shuffles. Needs K % 8 == 0 and
//     16-byte aligned rows, else (2). This is the bandwidth-bound decode path: it reads each weight
//     once per step. Measured (H100 SXM, bf16, T=1, bench/gpu/kernel-bench.ts, commit a11997d):
//     4096x4096 26 us = 1270 GB/s (launch/latency-bound; cuBLASLt 22 us), 22016x4096 67 us =
//     2700 GB/s, 4096x11008 38 us = 2380 GB/s, 32000x4096 91 us = 2870 GB/s (cuBLASLt 101 us).
//     An 8-deep variant (commit e138ef1) took 4096x4096 to 19 us but 22016x4096 to 149 us: reverted.
// (2) Tiled GEMM fallback (any shape, no tensor cores): 64x64 output tile per 256-thread block,
//     BK = 16, 4x4 outputs per thread, inputs converted to f32 in shared memory. Used for T > 8 when
//     cuBLASLt is absent or cannot do the dtype combination.
// x in TX, w in TW (any pair of f32/f16/bf16); out and bias any float dtype.
#include "common.cuh"

#define GEMV_WARPS 8

template <typename TX, typename TW, int NT>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_kernel(void* out, int dtOut, const TX* x, const TW* w, const void* bias, int dtBias, int T, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
  if (n >= N) return;
  const TW* wr = w + (size_t)n * K;
  const int chunks = K >> 3;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  int c = lane;
  for (; c + 96 < chunks; c += 128) {
    float wv[4][8];
#pragma unroll
    for (int u = 0; u < 4; u++) Vec8<TW>::load(wr + (size_t)(c + 32 * u) * 8, wv[u]);
#pragma unroll
    for (int u = 0; u < 4; u++) {
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t < T) {
          float xv[8];
          Vec8<TX>::load(x + (size_t)t * K + (size_t)(c + 32 * u) * 8, xv);
#pragma unroll
          for (int e = 0; e < 8; e++) acc[t] = fmaf(wv[u][e], xv[e], acc[t]);
        }
      }
    }
  }
  for (; c < chunks; c += 32) {
    float wv[8];
    Vec8<TW>::load(wr + (size_t)c * 8, wv);
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t < T) {
        float xv[8];
        Vec8<TX>::load(x + (size_t)t * K + (size_t)c * 8, xv);
#pragma unroll
        for (int e = 0; e < 8; e++) acc[t] = fmaf(wv[e], xv[e], acc[t]);
      }
    }
  }
  const float b = bias ? ld_any(bias, dtBias, n) : 0.f;
#pragma unroll
  for (int t = 0; t < NT; t++) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < T) st_any(out, dtOut, (size_t)t * N + n, v + b);
  }
}

#define TB 64
#define TK 16
template <typename TX, typename TW>
__global__ void __launch_bounds__(256)
gemm_tiled_kernel(void* out, int dtOut, const TX* x, const TW* w, const void* bias, int dtBias, int T, int N, int K) {
  __shared__ float xs[TK][TB + 4];
  __shared__ float ws[TK][TB + 4];
  const int t0 = blockIdx.y * TB, n0 = blockIdx.x * TB;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;  // 16 x 16 threads, 4 x 4 outputs each
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int i = threadIdx.x; i < TB * TK; i += 256) {
      const int r = i / TK, kk = i % TK;
      const int gk = k0 + kk;
      xs[kk][r] = (t0 + r < T && gk < K) ? to_f(x[(size_t)(t0 + r) * K + gk]) : 0.f;
      ws[kk][r] = (n0 + r < N && gk < K) ? to_f(w[(size_t)(n0 + r) * K + gk]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; kk++) {
      float a[4], bb[4];
#pragma unroll
      for (int i = 0; i < 4; i++) { a[i] = xs[kk][ty * 4 + i]; bb[i] = ws[kk][tx * 4 + i]; }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], bb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int t = t0 + ty * 4 + i;
    if (t >= T) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int n = n0 + tx * 4 + j;
      if (n < N) st_any(out, dtOut, (size_t)t * N + n, acc[i][j] + (bias ? ld_any(bias, dtBias, n) : 0.f));
    }
  }
}

template <typename TX, typename TW>
static cudaError_t run_matmul(void* out, int dtOut, const void* x, const void* w, const void* bias, int dtBias,
                              int T, int N, int K, cudaStream_t s) {
  const size_t esx = sizeof(TX), esw = sizeof(TW);
  const bool vec = K % 8 == 0 && ((uintptr_t)x % 16 == 0) && ((uintptr_t)w % 16 == 0) && (K * esx) % 16 == 0 &&
                   (K * esw) % 16 == 0;
  if (vec && T <= 8) {
    const unsigned grid = tm_cdiv(N, GEMV_WARPS);
    const TX* xp = (const TX*)x;
    const TW* wp = (const TW*)w;
    if (T == 1) gemv_kernel<TX, TW, 1><<<grid, GEMV_WARPS * 32, 0, s>>>(out, dtOut, xp, wp, bias, dtBias, T, N, K);
    else if (T <= 4) gemv_kernel<TX, TW, 4><<<grid, GEMV_WARPS * 32, 0, s>>>(out, dtOut, xp, wp, bias, dtBias, T, N, K);
    else gemv_kernel<TX, TW, 8><<<grid, GEMV_WARPS * 32, 0, s>>>(out, dtOut, xp, wp, bias, dtBias, T, N, K);
  } else {
    dim3 grid(tm_cdiv(N, TB), tm_cdiv(T, TB));
    gemm_tiled_kernel<TX, TW><<<grid, 256, 0, s>>>(out, dtOut, (const TX*)x, (const TW*)w, bias, dtBias, T, N, K);
  }
  return cudaGetLastError();
}

extern "C" int gemv_max_tokens(void) { return 8; }

extern "C" cudaError_t launch_matmul_own(void* out, int dtOut, const void* x, int dtX, const void* w, int dtW,
                                         const void* bias, int dtBias, int T, int N, int K, cudaStream_t s) {
  if (T <= 0 || N <= 0) return cudaSuccess;
  if (dtX == dtW) {
    TM_DISPATCH_FLOAT(dtX, T_, return run_matmul<T_, T_>(out, dtOut, x, w, bias, dtBias, T, N, K, s));
  }
  if (dtX == TM_F32) {
    if (dtW == TM_BF16) return run_matmul<float, bf16>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
    if (dtW == TM_F16) return run_matmul<float, f16>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
  }
  if (dtW == TM_F32) {
    if (dtX == TM_BF16) return run_matmul<bf16, float>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
    if (dtX == TM_F16) return run_matmul<f16, float>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
  }
  if (dtX == TM_BF16 && dtW == TM_F16) return run_matmul<bf16, f16>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
  if (dtX == TM_F16 && dtW == TM_BF16) return run_matmul<f16, bf16>(out, dtOut, x, w, bias, dtBias, T, N, K, s);
  return cudaErrorInvalidValue;
}
