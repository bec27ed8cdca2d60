// matmul_q8: out[t, n] = scales[n] * sum_k x[t, k] * wq[n, k] (+ bias[n]) (weight-only int8).
// Shapes: x [T, K] f32, wq [N, K] int8 (symmetric, per output channel scale), scales [N] f32, bias
// [N] any float dtype or null, out [T, N] f32. Row-major, no alignment assumed.
// Method: the dot-product form of matmul.cpp: each output owns one W-lane f32 accumulator over
// k = 0, W, 2W, ... (int8 -> int32 -> f32 in registers, exact; zero-filled tail), one fixed
// horizontal reduction, then * scale, then + bias. Decode (T < 4) streams each int8 row once in 1 x 8
// tiles (avx512) or 1 x 4; prefill (T >= 4) converts a block of rows to f32 scratch once (exact
// integers) and runs 4 x 4 tiles over it. Both see identical per-element operations in the same
// order, so results do not depend on T, tiling, chunking or threads (batch invariant).
// Measured: see docs/kernels.md, "CPU int8 weights" (decode tok/s f32 vs int8).
#include <stdlib.h>

#include "kernels.h"
#include "simd.h"

#ifndef TM_Q8_PREFETCH_TILES
#define TM_Q8_PREFETCH_TILES 2
#endif

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

// W int8 values as f32 lanes (exact).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
inline VF vload_q8(const int8_t* p) {
  return {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))))};
}
inline VF vload_q8_part(const int8_t* p, int n) {
  return {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), p)))};
}
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
inline VF vload_q8(const int8_t* p) {
  return {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))))};
}
inline VF vload_q8_part(const int8_t* p, int n) {
  alignas(16) int8_t tmp[16] = {0};
  std::memcpy(tmp, p, static_cast<size_t>(n));
  return vload_q8(tmp);
}
#else
inline VF vload_q8(const int8_t* p) { VF r; for (int i = 0; i < W; i++) r.v[i] = static_cast<float>(p[i]); return r; }
inline VF vload_q8_part(const int8_t* p, int n) {
  VF r = vzero();
  for (int i = 0; i < n; i++) r.v[i] = static_cast<float>(p[i]);
  return r;
}
#endif

#if defined(__AVX2__) || defined(__AVX512F__)
inline void prefetch(const char* p) { _mm_prefetch(p, _MM_HINT_T0); }
#else
inline void prefetch(const char* p) { __builtin_prefetch(p, 0, 3); }
#endif
// Measured on the 2-core dev VM (stories110M int8 decode, 1 thread): none 18.7 ms/token, 1 tile
// 13.1, 2 tiles 13.0, 4 tiles 13.4, 8 tiles 13.9; _MM_HINT_T1 within noise of T0.
constexpr int64_t kPrefetchTiles = TM_Q8_PREFETCH_TILES;

inline VF loadw(const int8_t* p) { return vload_q8(p); }
inline VF loadw_part(const int8_t* p, int n) { return vload_q8_part(p, n); }
inline VF loadw(const float* p) { return vload(p); }
inline VF loadw_part(const float* p, int n) { return vload_part(p, n); }

// MR rows of x (from m0) against NR weight rows (wrows[0..NR), values of type WT) for outputs n0..n0+NR.
template <int MR, int NR, typename WT>
void micro(const MatmulQ8Args& a, const WT* w, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const float* xr[MR];
  const WT* wr[NR];
  for (int i = 0; i < MR; i++) xr[i] = a.x + (m0 + i) * K;
  for (int j = 0; j < NR; j++) wr[j] = w + j * K;
  VF acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) acc[i][j] = vzero();
  const int64_t kfull = K - K % W;
  // int8 rows: software-prefetch the rows kPrefetchTiles tiles ahead (contiguous NR * K bytes per
  // tile), NR * W bytes per k step, so DRAM requests stay in flight (the hardware prefetcher alone
  // reached ~7 GB/s here vs ~15 GB/s for f32 rows, whose compute per byte is 4x lower).
  const char* pf = reinterpret_cast<const char*>(wr[0]) + kPrefetchTiles * NR * K * static_cast<int64_t>(sizeof(WT));
  for (int64_t k = 0; k < kfull; k += W) {
    if constexpr (sizeof(WT) == 1) {
      for (int64_t b = 0; b < NR * W; b += 64) prefetch(pf + k * NR + b);
    }
    VF wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = loadw(wr[j] + k);
    for (int i = 0; i < MR; i++) {
      VF xv = vload(xr[i] + k);
      for (int j = 0; j < NR; j++) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
  if (kfull < K) {
    const int rem = static_cast<int>(K - kfull);
    VF wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = loadw_part(wr[j] + kfull, rem);
    for (int i = 0; i < MR; i++) {
      VF xv = vload_part(xr[i] + kfull, rem);
      for (int j = 0; j < NR; j++) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; i++) {
    float* o = a.out + (m0 + i) * a.N + n0;
    for (int j = 0; j < NR; j++) {
      float s = vreduce_add(acc[i][j]) * a.scales[n0 + j];
      if (a.bias != nullptr) s += load_scalar(a.bias, n0 + j, a.bdtype);
      o[j] = s;
    }
  }
}

// Outputs [n0, n1) for x rows m0..m0+MR; w points at row n0 of a [*, K] matrix of WT.
template <int MR, typename WT>
void row_tile(const MatmulQ8Args& a, const WT* w, int64_t m0, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  int64_t n = n0;
  if constexpr (MR == 1 && W == 16)
    for (; n + 8 <= n1; n += 8) micro<1, 8, WT>(a, w + (n - n0) * K, m0, n);
  for (; n + 4 <= n1; n += 4) micro<MR, 4, WT>(a, w + (n - n0) * K, m0, n);
  switch (n1 - n) {
    case 3: micro<MR, 3, WT>(a, w + (n - n0) * K, m0, n); break;
    case 2: micro<MR, 2, WT>(a, w + (n - n0) * K, m0, n); break;
    case 1: micro<MR, 1, WT>(a, w + (n - n0) * K, m0, n); break;
    default: break;
  }
}

template <typename WT>
void rows_range(const MatmulQ8Args& a, const WT* w, int64_t n0, int64_t n1) {
  int64_t m = 0;
  for (; m + 4 <= a.T; m += 4) row_tile<4, WT>(a, w, m, n0, n1);
  switch (a.T - m) {
    case 3: row_tile<3, WT>(a, w, m, n0, n1); break;
    case 2: row_tile<2, WT>(a, w, m, n0, n1); break;
    case 1: row_tile<1, WT>(a, w, m, n0, n1); break;
    default: break;
  }
}

// Per-thread f32 scratch for converted rows (plain pointer: no std templates in ISA code).
thread_local float* t_scratch = nullptr;
thread_local int64_t t_scratch_floats = 0;

float* scratch(int64_t floats) {
  if (floats > t_scratch_floats) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, static_cast<size_t>(floats) * 4) != 0) return nullptr;
    free(t_scratch);
    t_scratch = static_cast<float*>(p);
    t_scratch_floats = floats;
  }
  return t_scratch;
}

// Prefill: convert up to ~192 KiB of f32 rows at a time, then the f32 tiles (identical values/order).
bool converted(const MatmulQ8Args& a, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  int64_t sub = (192 * 1024 / 4 / (K > 0 ? K : 1)) & ~int64_t{3};
  if (sub < 4) sub = 4;
  float* buf = scratch(sub * K);
  if (buf == nullptr) return false;
  for (int64_t c = n0; c < n1; c += sub) {
    const int64_t c1 = c + sub < n1 ? c + sub : n1;
    const int8_t* w = a.wq + c * K;
    const int64_t total = (c1 - c) * K;
    int64_t i = 0;
    for (; i + W <= total; i += W) vstore(buf + i, vload_q8(w + i));
    if (i < total) vstore_part(buf + i, vload_q8_part(w + i, static_cast<int>(total - i)), static_cast<int>(total - i));
    rows_range<float>(a, buf, c, c1);
  }
  return true;
}

}  // namespace

void matmul_q8(const MatmulQ8Args& a, int64_t n0, int64_t n1) {
  constexpr int64_t kConvertMinT = 4;
  if (a.T >= kConvertMinT && converted(a, n0, n1)) return;
  rows_range<int8_t>(a, a.wq + n0 * a.K, n0, n1);
}

}}}  // namespace tmill::cpu::TM_ISA
