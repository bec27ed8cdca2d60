// Weight-only int8 matmul (Backend.matmulQ8): out[T, N] = s[N] * (x[T, K] . wq[N, K]^T) (+ bias[N]),
// f32 accumulation, the per-channel scale applied once after the dot product (as the reference).
// (1) GEMV for T <= 8 (decode): one warp per output row n; lanes stride over K in 16-element chunks
//     (one 16-byte load of int8, dequantized in registers: exact int -> f32), 2 chunks loaded before
//     first use; x chunks through L1 (two Vec8 loads); NT partial sums reduced with shuffles. Needs
//     K % 16 == 0 and 16-byte aligned x / wq rows, else (2). Reads 1 byte per weight: half of the
//     bf16 GEMV's traffic, so decode should approach 2x the bf16 GEMV at bandwidth-bound shapes.
// (2) Tiled fallback (any shape, no tensor cores): 64x64 tile, 256 threads, BK 16, int8 -> f32 in
//     shared memory, scale in the epilogue. Used when (1) cannot run, and for T > 8 when the backend
//     cannot dequantize into a scratch (e.g. while capturing a graph).
// (3) launch_dequant_q8: w[n, k] = q[n, k] * s[n] rounded to the compute dtype, for T > 8: the
//     backend dequantizes a weight into a scratch and runs the normal (cuBLASLt) matmul over it.
// NOT YET RUN ON A GPU: compiled only (no device in the session that wrote it); see docs/kernels.md.
#include "common.cuh"

#define Q8_WARPS 8

__device__ __forceinline__ void unpack_q8x16(const uint4& u, float* o) {
  const int8_t* b = reinterpret_cast<const int8_t*>(&u);
#pragma unroll
  for (int i = 0; i < 16; i++) o[i] = (float)b[i];
}

template <typename TX, int NT>
__global__ void __launch_bounds__(Q8_WARPS * 32)
gemv_q8_kernel(void* out, int dtOut, const TX* x, const int8_t* wq, const float* scales, const void* bias, int dtBias,
               int T, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * Q8_WARPS + (threadIdx.x >> 5);
  if (n >= N) return;
  const uint4* wr = reinterpret_cast<const uint4*>(wq + (size_t)n * K);
  const int chunks = K >> 4;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  int c = lane;
  for (; c + 32 < chunks; c += 64) {
    uint4 raw[2];
    raw[0] = wr[c];
    raw[1] = wr[c + 32];
#pragma unroll
    for (int u = 0; u < 2; u++) {
      float wv[16];
      unpack_q8x16(raw[u], wv);
      const size_t k0 = (size_t)(c + 32 * u) * 16;
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t < T) {
          float xv[16];
          Vec8<TX>::load(x + (size_t)t * K + k0, xv);
          Vec8<TX>::load(x + (size_t)t * K + k0 + 8, xv + 8);
#pragma unroll
          for (int e = 0; e < 16; e++) acc[t] = fmaf(wv[e], xv[e], acc[t]);
        }
      }
    }
  }
  for (; c < chunks; c += 32) {
    float wv[16];
    unpack_q8x16(wr[c], wv);
    const size_t k0 = (size_t)c * 16;
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t < T) {
        float xv[16];
        Vec8<TX>::load(x + (size_t)t * K + k0, xv);
        Vec8<TX>::load(x + (size_t)t * K + k0 + 8, xv + 8);
#pragma unroll
        for (int e = 0; e < 16; e++) acc[t] = fmaf(wv[e], xv[e], acc[t]);
      }
    }
  }
  const float s = scales[n];
  const float b = bias ? ld_any(bias, dtBias, n) : 0.f;
#pragma unroll
  for (int t = 0; t < NT; t++) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < T) st_any(out, dtOut, (size_t)t * N + n, v * s + b);
  }
}

#define Q8_TB 64
#define Q8_TK 16
template <typename TX>
__global__ void __launch_bounds__(256)
gemm_q8_tiled_kernel(void* out, int dtOut, const TX* x, const int8_t* wq, const float* scales, const void* bias, int dtBias,
                     int T, int N, int K) {
  __shared__ float xs[Q8_TK][Q8_TB + 4];
  __shared__ float ws[Q8_TK][Q8_TB + 4];
  const int t0 = blockIdx.y * Q8_TB, n0 = blockIdx.x * Q8_TB;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += Q8_TK) {
    for (int i = threadIdx.x; i < Q8_TB * Q8_TK; i += 256) {
      const int r = i / Q8_TK, kk = i % Q8_TK;
      const int gk = k0 + kk;
      xs[kk][r] = (t0 + r < T && gk < K) ? to_f(x[(size_t)(t0 + r) * K + gk]) : 0.f;
      ws[kk][r] = (n0 + r < N && gk < K) ? (float)wq[(size_t)(n0 + r) * K + gk] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < Q8_TK; kk++) {
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
      if (n < N) st_any(out, dtOut, (size_t)t * N + n, acc[i][j] * scales[n] + (bias ? ld_any(bias, dtBias, n) : 0.f));
    }
  }
}

template <typename TO>
__global__ void dequant_q8_kernel(TO* out, const int8_t* wq, const float* scales, int N, int K) {
  const size_t total = (size_t)N * K;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
    out[i] = from_f<TO>((float)wq[i] * scales[i / K]);
}

template <typename TX>
static cudaError_t run_matmul_q8(void* out, int dtOut, const void* x, const int8_t* wq, const float* scales,
                                 const void* bias, int dtBias, int T, int N, int K, cudaStream_t s) {
  const bool vec = K % 16 == 0 && ((uintptr_t)x % 16 == 0) && ((uintptr_t)wq % 16 == 0) && ((size_t)K * sizeof(TX)) % 16 == 0;
  const TX* xp = (const TX*)x;
  if (vec && T <= 8) {
    const unsigned grid = tm_cdiv(N, Q8_WARPS);
    if (T == 1) gemv_q8_kernel<TX, 1><<<grid, Q8_WARPS * 32, 0, s>>>(out, dtOut, xp, wq, scales, bias, dtBias, T, N, K);
    else if (T <= 4) gemv_q8_kernel<TX, 4><<<grid, Q8_WARPS * 32, 0, s>>>(out, dtOut, xp, wq, scales, bias, dtBias, T, N, K);
    else gemv_q8_kernel<TX, 8><<<grid, Q8_WARPS * 32, 0, s>>>(out, dtOut, xp, wq, scales, bias, dtBias, T, N, K);
  } else {
    dim3 grid(tm_cdiv(N, Q8_TB), tm_cdiv(T, Q8_TB));
    gemm_q8_tiled_kernel<TX><<<grid, 256, 0, s>>>(out, dtOut, xp, wq, scales, bias, dtBias, T, N, K);
  }
  return cudaGetLastError();
}

extern "C" int gemv_q8_max_tokens(void) { return 8; }

extern "C" cudaError_t launch_matmul_q8(void* out, int dtOut, const void* x, int dtX, const int8_t* wq, const float* scales,
                                        const void* bias, int dtBias, int T, int N, int K, cudaStream_t s) {
  if (T <= 0 || N <= 0) return cudaSuccess;
  TM_DISPATCH_FLOAT(dtX, T_, return run_matmul_q8<T_>(out, dtOut, x, wq, scales, bias, dtBias, T, N, K, s));
}

extern "C" cudaError_t launch_dequant_q8(void* out, int dtOut, const int8_t* wq, const float* scales, int N, int K,
                                         cudaStream_t s) {
  if (N <= 0 || K <= 0) return cudaSuccess;
  const size_t total = (size_t)N * K;
  const unsigned grid = (unsigned)(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
  TM_DISPATCH_FLOAT(dtOut, T_, dequant_q8_kernel<T_><<<grid, 256, 0, s>>>((T_*)out, wq, scales, N, K); return cudaGetLastError());
}
