// matmul_q8: out[t, n] = xd[t] * scales[n] * sum_k xq[t, k] * wq[n, k] (+ bias[n]): int8 weights
// (symmetric, one f32 scale per output row) against the activations quantized once per matmul by the
// engine (engine_quant.cpp): per row, xd[t] = max|x[t, :]| / 32767 and xq = rne(x / xd), int16 codes
// in rows of ldx >= K (zero padded to a multiple of 32). Shapes: wq [N, K] int8 (no alignment), out [T, N].
// Why int16 codes: pmaddwd (or VNNI vpdpwssd) gives 16 exact products per ymm per uop with no sign
// trick and no per-group rescale, twice the MACs per uop of the f32 FMA form this replaced; an int16
// code keeps the activation error at 1/65534 of the row's max (int8 per 32 would be 1/254 of the group's).
// Method: every dot product is an exact integer (int32 lane sums over at most 4096 weights, then
// int64), so results are identical whatever T, the tile, the thread split or the ISA (generic, avx2,
// avx512 and their VNNI variants agree bit for bit); one rounding turns it into f32 (q8_finish).
// Tiles: MR token rows x NR weight rows, each weight vector sign-extended once per tile and reused
// by the MR rows; decode (MR = 1) prefetches the int8 rows two tiles ahead.
#include <stdlib.h>

#include <cstring>

#include "kernels.h"
#include "simd.h"

#ifndef TM_Q8_PREFETCH_TILES
#define TM_Q8_PREFETCH_TILES 2
#endif

namespace tmill { namespace cpu { namespace TM_ISA {

#include "matmul_q8_finish.h"

namespace {

[[maybe_unused]] constexpr int64_t kPrefetchTiles = TM_Q8_PREFETCH_TILES;

}  // namespace

#if defined(__AVX2__)
namespace simd {
#define TM_Q8_VNNI 0
#include "matmul_q8_rows.inc"
#undef TM_Q8_VNNI
}  // namespace simd
void matmul_q8(const MatmulQ8Args& a, int64_t n0, int64_t n1) { simd::rows(a, n0, n1); }

// The same tiles on VNNI vpdpwssd (avx512: AVX512-VNNI on zmm; avx2: AVX-VNNI on ymm); dispatch.cpp
// hands this variant out only where the CPU reports the extension.
#pragma GCC push_options
#if defined(__AVX512F__)
#pragma GCC target("avx512vnni")
#else
#pragma GCC target("avxvnni")
#endif
namespace simd_vnni {
#define TM_Q8_VNNI 1
#include "matmul_q8_rows.inc"
#undef TM_Q8_VNNI
}  // namespace simd_vnni
void matmul_q8_vnni(const MatmulQ8Args& a, int64_t n0, int64_t n1) { simd_vnni::rows(a, n0, n1); }
#pragma GCC pop_options

#else
namespace {
// Portable: MR x NR outputs, int32 sums over chunks of 512 products (|sum| < 2^31), then int64.
template <int MR, int NR>
void micro(const MatmulQ8Args& a, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  int64_t tot[MR][NR] = {};
  for (int64_t kc = 0; kc < K; kc += 512) {
    const int64_t k1 = kc + 512 < K ? kc + 512 : K;
    for (int i = 0; i < MR; i++) {
      const int16_t* x = a.xq + (m0 + i) * a.ldx;
      for (int j = 0; j < NR; j++) {
        const int8_t* w = a.wq + (n0 + j) * K;
        int32_t s = 0;
        for (int64_t k = kc; k < k1; k++) s += static_cast<int32_t>(x[k]) * static_cast<int32_t>(w[k]);
        tot[i][j] += s;
      }
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) a.out[(m0 + i) * a.N + n0 + j] = q8_finish(a, m0 + i, n0 + j, tot[i][j]);
}

template <int MR>
void row_tile(const MatmulQ8Args& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) micro<MR, 4>(a, m0, n);
  for (; n < n1; n++) micro<MR, 1>(a, m0, n);
}
}  // namespace

void matmul_q8(const MatmulQ8Args& a, int64_t n0, int64_t n1) {
  int64_t m = 0;
  for (; m + 4 <= a.T; m += 4) row_tile<4>(a, m, n0, n1);
  for (; m < a.T; m++) row_tile<1>(a, m, n0, n1);
}
#endif

}}}  // namespace tmill::cpu::TM_ISA
