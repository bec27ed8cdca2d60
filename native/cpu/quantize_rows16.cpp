// Activation codes of the int8 matmul (matmul_q8*.cpp), per ISA: rows [r0, r1) of x [*, K] get
// d[r] = max|x[r, :]| / 32767 and q[r, k] = clamp(rne(x * (1 / d)), +-32767), zeros in [K, ldq). A row
// with a non-finite value gets d = NaN (its outputs become NaN, as the float product would be); a
// row whose scale would be subnormal gets d = 0 and zero codes (its |x| < 4e-34).
// Every step is an exactly rounded IEEE operation (abs, max, one multiply, round half to even, clamp)
// and max is order-free, so the vector widths give the same codes as the scalar loop, bit for bit:
// every kernel table sees the same codes (the conformance suite checks this through actRows16).
#include <cfloat>
#include <cmath>

#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

#if defined(__AVX512F__) && defined(__AVX512BW__)
constexpr int64_t kLanes = 16;
// max|x| over the full vectors of a row; `nan` set when one is NaN (max_ps(v, m) never picks a NaN v).
inline float amax_vec(const float* x, int64_t n, bool* nan) {
  __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
  __mmask16 un = 0;
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m512 v0 = _mm512_abs_ps(_mm512_loadu_ps(x + k)), v1 = _mm512_abs_ps(_mm512_loadu_ps(x + k + 16));
    m0 = _mm512_max_ps(v0, m0);
    m1 = _mm512_max_ps(v1, m1);
    un |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
  }
  for (; k + 16 <= n; k += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(x + k));
    m0 = _mm512_max_ps(v, m0);
    un |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  *nan = un != 0;
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}
inline void codes_vec(const float* x, float id, int16_t* q) {
  const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_set1_ps(id));
  __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-32767.f)), _mm512_set1_ps(32767.f));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(r)));
}
#elif defined(__AVX2__)
constexpr int64_t kLanes = 8;
inline float amax_vec(const float* x, int64_t n, bool* nan) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps(), un = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    const __m256 v0 = _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask);
    const __m256 v1 = _mm256_and_ps(_mm256_loadu_ps(x + k + 8), abs_mask);
    m0 = _mm256_max_ps(v0, m0);
    m1 = _mm256_max_ps(v1, m1);
    un = _mm256_or_ps(un, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
  }
  for (; k + 8 <= n; k += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask);
    m0 = _mm256_max_ps(v, m0);
    un = _mm256_or_ps(un, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  *nan = _mm256_movemask_ps(un) != 0;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
  float m = 0.f;
  for (float v : lanes) m = m < v ? v : m;
  return m;
}
inline void codes_vec(const float* x, float id, int16_t* q) {
  const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), _mm256_set1_ps(id));
  __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-32767.f)), _mm256_set1_ps(32767.f));
  const __m256i i = _mm256_cvtps_epi32(r);
  const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), p);
}
#else
constexpr int64_t kLanes = 0;
#endif

}  // namespace

void quantize_rows16(const float* x, int64_t K, int64_t ldq, int16_t* q, float* d, int64_t r0, int64_t r1) {
  const int64_t kvec = kLanes > 0 ? K - K % kLanes : 0;
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * K;
    int16_t* qr = q + r * ldq;
    bool nan = false;
    float amax = 0.f;
#if defined(__AVX2__)
    amax = amax_vec(xr, kvec, &nan);
#endif
    for (int64_t k = kvec; k < K; k++) {
      const float v = std::fabs(xr[k]);
      if (v != v) nan = true;
      else if (v > amax) amax = v;
    }
    float dx = amax / 32767.f;
    if (nan || !(amax <= FLT_MAX)) dx = NAN;
    else if (dx < FLT_MIN) dx = 0.f;
    d[r] = dx;
    if (!(dx > 0.f)) {
      for (int64_t k = 0; k < ldq; k++) qr[k] = 0;
      continue;
    }
    const float id = 1.f / dx;
#if defined(__AVX2__)
    for (int64_t k = 0; k < kvec; k += kLanes) codes_vec(xr + k, id, qr + k);
#endif
    for (int64_t k = kvec; k < K; k++) {
      float v = std::rint(xr[k] * id);  // round half to even (default rounding mode)
      v = v > 32767.f ? 32767.f : v < -32767.f ? -32767.f : v;
      qr[k] = static_cast<int16_t>(v);
    }
    for (int64_t k = K; k < ldq; k++) qr[k] = 0;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
