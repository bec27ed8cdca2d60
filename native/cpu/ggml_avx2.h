// AVX2 register paths of matmul_ggml.cpp for the common formats (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K): each
// 32-weight group's codes are unpacked straight into a __m256i (no trip through memory), dotted with
// the activation codes (unsigned codes: maddubs directly; signed: the sign trick), and scaled into the
// caller's 8-lane accumulators, the same terms as ggml_blocks.h + acc_group (same integers; the f32
// products may round differently from the block-decoding path, which is fine for the spec's tolerance,
// and each (t, n) takes the same path whatever T is, so batch invariance holds).
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>

#include "ggml_blocks.h"

namespace tmill { namespace cpu { namespace TM_ISA { namespace {

inline __m256i g_dot_u(__m256i codes, __m256i q) {  // codes 0..63 (unsigned)
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, q), _mm256_set1_epi16(1));
}
inline __m256i g_dot_s(__m256i codes, __m256i q) {  // codes -128..127
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(codes, codes), _mm256_sign_epi8(q, codes)), _mm256_set1_epi16(1));
}
inline __m256i g_load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m256i g_nibbles16(const uint8_t* qs) {  // 16 bytes -> 32 codes: low nibbles, then high
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// Rows t of a tile: activation codes q(t, g) at xq + t*K + 32g, scale xd[t*G + g], code sum xs[t*G + g].
struct GTile { const int8_t* xq; const float* xd; const int32_t* xs; int64_t K, G; int nt; __m256* av; float* am; };

inline void g_acc(const GTile& T, int64_t gi, __m256i codes, bool is_signed, float s_lo, float s_hi, float m) {
  for (int t = 0; t < T.nt; t++) {
    const __m256i q = g_load(T.xq + t * T.K + gi * 32);
    const __m256i p = is_signed ? g_dot_s(codes, q) : g_dot_u(codes, q);
    const float dx = T.xd[t * T.G + gi];
    const __m256 sc = s_lo == s_hi ? _mm256_set1_ps(dx * s_lo) : _mm256_set_m128(_mm_set1_ps(dx * s_hi), _mm_set1_ps(dx * s_lo));
    T.av[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, T.av[t]);
    if (m != 0.f) T.am[t] += dx * (m * static_cast<float>(T.xs[t * T.G + gi]));
  }
}

// One weight row (nb blocks) into the tile's accumulators; false when `type` has no register path.
inline bool avx2_row(int32_t type, const uint8_t* row, int64_t nb, const GTile& T) {
  switch (type) {
    case kQ8_0:
      for (int64_t ib = 0; ib < nb; ib++) {
        const uint8_t* b = row + ib * 34;
        const float d = ggml_f16(b);
        g_acc(T, ib, g_load(b + 2), true, d, d, 0.f);
      }
      return true;
    case kQ4_0: case kQ4_1: {
      const bool one = type == kQ4_1;
      const int bb = one ? 20 : 18;
      for (int64_t ib = 0; ib < nb; ib++) {
        const uint8_t* b = row + ib * bb;
        const float d = ggml_f16(b);
        __m256i c = g_nibbles16(b + (one ? 4 : 2));
        if (!one) c = _mm256_sub_epi8(c, _mm256_set1_epi8(8));
        g_acc(T, ib, c, !one, d, d, one ? ggml_f16(b + 2) : 0.f);
      }
      return true;
    }
    case kQ4_K:
      for (int64_t ib = 0; ib < nb; ib++) {
        const uint8_t* b = row + ib * 144;
        const float d = ggml_f16(b), dmin = ggml_f16(b + 2);
        for (int p = 0; p < 4; p++) {
          const __m256i v = g_load(b + 16 + 32 * p);
          const __m256i m4 = _mm256_set1_epi8(0x0F);
          for (int h = 0; h < 2; h++) {
            const int g = 2 * p + h;
            int sc, mn;
            k_scale_min(b + 4, g, &sc, &mn);
            const __m256i c = h == 0 ? _mm256_and_si256(v, m4) : _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const float s = d * static_cast<float>(sc);
            g_acc(T, ib * 8 + g, c, false, s, s, -(dmin * static_cast<float>(mn)));
          }
        }
      }
      return true;
    case kQ6_K:
      for (int64_t ib = 0; ib < nb; ib++) {
        const uint8_t* b = row + ib * 210;
        const float d = ggml_f16(b + 208);
        const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
        for (int half = 0; half < 2; half++) {
          const __m256i l0 = g_load(b + 64 * half), l1 = g_load(b + 64 * half + 32), hb = g_load(b + 128 + 32 * half);
          for (int r = 0; r < 4; r++) {
            const __m256i lo = _mm256_and_si256(r >> 1 ? _mm256_srli_epi16(r & 1 ? l1 : l0, 4) : (r & 1 ? l1 : l0), m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * r), m2);
            const __m256i c = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), k32);
            const int8_t* sc = scales + 8 * half + 2 * r;
            g_acc(T, ib * 8 + half * 4 + r, c, true, d * static_cast<float>(sc[0]), d * static_cast<float>(sc[1]), 0.f);
          }
        }
      }
      return true;
    default:
      return false;
  }
}

}}}}  // namespace tmill::cpu::TM_ISA::(anonymous)
#endif
