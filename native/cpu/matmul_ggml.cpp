// Weight-only matmul on ggml blocks (Backend.matmulGgml) and the row decoder behind embeddingGgml;
// spec: src/runtime/reference/ops-ggml.ts. Shapes: x quantized beforehand by quantize_act into codes
// xq [T, K] int8, scales xd [T, K/32] f32 and code sums xs [T, K/32]; w [N, row_bytes] raw blocks;
// out [T, N] f32. Method: for a tile of up to 16 rows of x, each weight row's groups of 32 are
// unpacked once into int8 codes (AVX2 register paths for Q8_0/Q4_0/Q4_1/Q4_K/Q6_K: ggml_avx2.h; else
// the block decoder ggml_blocks.h) and give an exact integer dot product per 16-weight half with each
// tile row (AVX2: maddubs/madd, 8 int32 lanes, lanes 0-3 the low half), scaled into an 8-lane f32
// accumulator; the min term goes to a scalar accumulator; one horizontal sum per output. Per element the operations and their order depend only on (t, n), never
// on T, the tile or the thread split (batch invariant). The avx512 build runs the AVX2 path (no VNNI
// variant yet); generic runs scalar loops. Measured: not yet (the dev VM is shared; bench/cpu).
#include <cmath>

#include "ggml_avx2.h"
#include "ggml_blocks.h"
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

void quantize_act(const float* x, int8_t* q, float* d, int32_t* s, int64_t K, int64_t r0, int64_t r1) {
  const int64_t G = K / 32;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t g = 0; g < G; g++) {
      const float* xv = x + r * K + g * 32;
      float amax = 0.f;
      for (int i = 0; i < 32; i++) amax = std::fmax(amax, std::fabs(xv[i]));
      const float dx = amax / 127.f;
      const float id = dx != 0.f ? 1.f / dx : 0.f;
      int8_t* qv = q + r * K + g * 32;
      int32_t sum = 0;
      for (int i = 0; i < 32; i++) {
        float v = std::rint(xv[i] * id);  // round half to even (default rounding mode)
        v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
        qv[i] = static_cast<int8_t>(v);
        sum += qv[i];
      }
      d[r * G + g] = dx;
      s[r * G + g] = sum;
    }
  }
}

namespace {

// Rows of x per pass over the weights: each weight row's blocks are decoded once per tile.
constexpr int kTileT = 16;

#if defined(__AVX2__)
using AccV = __m256;
inline AccV acc_zero() { return _mm256_setzero_ps(); }
inline void acc_group(AccV* v, float* am, const int8_t* c, const int8_t* q, float dx, float s_lo, float s_hi, float m, int32_t xs) {
  const __m256i p = g_dot_s(g_load(c), g_load(q));
  const __m256 sc = _mm256_set_m128(_mm_set1_ps(dx * s_hi), _mm_set1_ps(dx * s_lo));
  *v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, *v);
  if (m != 0.f) *am += dx * (m * static_cast<float>(xs));
}
inline float acc_total(AccV v, float am) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s) + am;
}
#else
using AccV = float;
inline AccV acc_zero() { return 0.f; }
inline void acc_group(AccV* v, float* am, const int8_t* c, const int8_t* q, float dx, float s_lo, float s_hi, float m, int32_t xs) {
  int32_t lo = 0, hi = 0;
  for (int i = 0; i < 16; i++) lo += static_cast<int32_t>(c[i]) * q[i];
  for (int i = 16; i < 32; i++) hi += static_cast<int32_t>(c[i]) * q[i];
  *v += dx * s_lo * static_cast<float>(lo) + dx * s_hi * static_cast<float>(hi);
  if (m != 0.f) *am += dx * (m * static_cast<float>(xs));
}
inline float acc_total(AccV v, float am) { return v + am; }
#endif

// The portable path: decode each block into codes + scales (ggml_blocks.h), then every tile row.
void decoded_row(const MatmulGgmlArgs& a, const uint8_t* row, int64_t t0, int nt, AccV* av, float* am) {
  const int be = ggml_block_elems(a.type), bb = ggml_block_bytes(a.type);
  const int gpb = be / 32;
  const int64_t nb = a.K / be, G = a.K / 32;
  GgmlBlock blk;
  for (int64_t ib = 0; ib < nb; ib++) {
    decode_block(a.type, row + ib * bb, &blk);
    for (int g = 0; g < gpb; g++) {
      const int64_t gi = ib * gpb + g;
      for (int t = 0; t < nt; t++) {
        const int64_t r = t0 + t;
        acc_group(&av[t], &am[t], blk.c + 32 * g, a.xq + r * a.K + gi * 32, a.xd[r * G + gi], blk.s_lo[g], blk.s_hi[g], blk.m[g],
                  a.xs[r * G + gi]);
      }
    }
  }
}

}  // namespace

void matmul_ggml(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  const int64_t nb = a.K / ggml_block_elems(a.type), G = a.K / 32;
  AccV av[kTileT];
  float am[kTileT];
  for (int64_t t0 = 0; t0 < a.T; t0 += kTileT) {
    const int nt = static_cast<int>(a.T - t0 < kTileT ? a.T - t0 : kTileT);
    for (int64_t n = n0; n < n1; n++) {
      const uint8_t* row = a.w + n * a.row_bytes;
      for (int t = 0; t < nt; t++) { av[t] = acc_zero(); am[t] = 0.f; }
#if defined(__AVX2__)
      const GTile tile{a.xq + t0 * a.K, a.xd + t0 * G, a.xs + t0 * G, a.K, G, nt, av, am};
      if (!avx2_row(a.type, row, nb, tile)) decoded_row(a, row, t0, nt, av, am);
#else
      (void)nb;
      (void)G;
      decoded_row(a, row, t0, nt, av, am);
#endif
      for (int t = 0; t < nt; t++) {
        float v = acc_total(av[t], am[t]);
        if (a.bias != nullptr) v += load_scalar(a.bias, n, a.bdtype);
        a.out[(t0 + t) * a.N + n] = v;
      }
    }
  }
}

void dequant_rows(float* out, const uint8_t* w, int32_t type, int64_t row_bytes, int64_t K, const int32_t* ids, int64_t r0,
                  int64_t r1) {
  const int be = ggml_block_elems(type), bb = ggml_block_bytes(type);
  const bool has_min = ggml_has_min(type);
  GgmlBlock blk;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = w + static_cast<int64_t>(ids[r]) * row_bytes;
    float* o = out + r * K;
    for (int64_t ib = 0; ib < K / be; ib++) {
      decode_block(type, row + ib * bb, &blk);
      for (int i = 0; i < be; i++) {
        const int g = i >> 5;
        float v = static_cast<float>(blk.c[i]) * ((i & 31) < 16 ? blk.s_lo[g] : blk.s_hi[g]);
        if (has_min) v = v + blk.m[g];
        o[ib * be + i] = v;
      }
    }
  }
}

}}}  // namespace tmill::cpu::TM_ISA
