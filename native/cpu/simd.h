// The SIMD vocabulary the op kernels are written in, compiled once per ISA: each ISA static library
// (binding.gyp) builds the kernel .cpp files with its own -m flags and -DTM_ISA=<name>, so the same
// source yields avx512 (16 lanes), avx2 (8 lanes, FMA, F16C) and generic (8 lanes, plain C++).
// Every op is exact-order: partial loads zero-fill, reductions use one fixed tree per ISA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../common/dtype.h"

#if !defined(TM_ISA)
#error "TM_ISA must be defined (avx512 | avx2 | generic)"
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tmill { namespace cpu { namespace TM_ISA {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
constexpr int W = 16;
struct VF { __m512 v; };
inline VF vzero() { return {_mm512_setzero_ps()}; }
inline VF vset1(float x) { return {_mm512_set1_ps(x)}; }
inline VF vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline VF vload(const uint16_t* p, DType d) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (d == DType::kF16) return {_mm512_cvtph_ps(h)};
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline __mmask16 tail_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline VF vload_part(const float* p, int n) { return {_mm512_maskz_loadu_ps(tail_mask(n), p)}; }
inline VF vload_part(const uint16_t* p, int n, DType d) {
  __m256i h = _mm256_maskz_loadu_epi16(tail_mask(n), p);
  if (d == DType::kF16) return {_mm512_cvtph_ps(h)};
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))};
}
inline void vstore(float* p, VF a) { _mm512_storeu_ps(p, a.v); }
inline void vstore_part(float* p, VF a, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), a.v); }
inline VF vfma(VF a, VF b, VF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline VF vadd(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VF vsub(VF a, VF b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline VF vmul(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VF vdiv(VF a, VF b) { return {_mm512_div_ps(a.v, b.v)}; }
inline VF vmax(VF a, VF b) { return {_mm512_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm512_min_ps(a.v, b.v)}; }
inline VF vfloor(VF a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)}; }
inline VF vpow2i(VF n) {  // 2^n for integral n in [-126, 127]
  __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
}
inline float vreduce_add(VF a) {
  __m256 lo = _mm512_castps512_ps256(a.v);
  __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1));
  __m256 s8 = _mm256_add_ps(lo, hi);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}
#define TM_ISA_NAME "avx512"

#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
constexpr int W = 8;
struct VF { __m256 v; };
inline VF vzero() { return {_mm256_setzero_ps()}; }
inline VF vset1(float x) { return {_mm256_set1_ps(x)}; }
inline VF vload(const float* p) { return {_mm256_loadu_ps(p)}; }
inline VF vload(const uint16_t* p, DType d) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (d == DType::kF16) return {_mm256_cvtph_ps(h)};
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))};
}
inline VF vload_part(const float* p, int n) {
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, p, static_cast<size_t>(n) * 4);
  return {_mm256_load_ps(tmp)};
}
inline VF vload_part(const uint16_t* p, int n, DType d) {
  alignas(32) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, p, static_cast<size_t>(n) * 2);
  return vload(tmp, d);
}
inline void vstore(float* p, VF a) { _mm256_storeu_ps(p, a.v); }
inline void vstore_part(float* p, VF a, int n) {
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, a.v);
  std::memcpy(p, tmp, static_cast<size_t>(n) * 4);
}
inline VF vfma(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline VF vadd(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF vsub(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VF vmul(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VF vdiv(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VF vmax(VF a, VF b) { return {_mm256_max_ps(a.v, b.v)}; }
inline VF vmin(VF a, VF b) { return {_mm256_min_ps(a.v, b.v)}; }
inline VF vfloor(VF a) { return {_mm256_floor_ps(a.v)}; }
inline VF vpow2i(VF n) {
  __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline float vreduce_add(VF a) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
  return _mm_cvtss_f32(s1);
}
#define TM_ISA_NAME "avx2"

#else
// Portable fallback: 8 scalar lanes the compiler may vectorize (fp-contract is off, so the
// per-lane order is exactly the written one).
constexpr int W = 8;
struct VF { float v[8]; };
inline VF vzero() { VF r; for (int i = 0; i < 8; i++) r.v[i] = 0.f; return r; }
inline VF vset1(float x) { VF r; for (int i = 0; i < 8; i++) r.v[i] = x; return r; }
inline VF vload(const float* p) { VF r; std::memcpy(r.v, p, 32); return r; }
inline VF vload(const uint16_t* p, DType d) {
  VF r;
  for (int i = 0; i < 8; i++) r.v[i] = d == DType::kF16 ? f16_to_f32(p[i]) : bf16_to_f32(p[i]);
  return r;
}
inline VF vload_part(const float* p, int n) { VF r = vzero(); std::memcpy(r.v, p, static_cast<size_t>(n) * 4); return r; }
inline VF vload_part(const uint16_t* p, int n, DType d) {
  VF r = vzero();
  for (int i = 0; i < n; i++) r.v[i] = d == DType::kF16 ? f16_to_f32(p[i]) : bf16_to_f32(p[i]);
  return r;
}
inline void vstore(float* p, VF a) { std::memcpy(p, a.v, 32); }
inline void vstore_part(float* p, VF a, int n) { std::memcpy(p, a.v, static_cast<size_t>(n) * 4); }
inline VF vfma(VF a, VF b, VF c) { VF r; for (int i = 0; i < 8; i++) r.v[i] = __builtin_fmaf(a.v[i], b.v[i], c.v[i]); return r; }
inline VF vadd(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] + b.v[i]; return r; }
inline VF vsub(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] - b.v[i]; return r; }
inline VF vmul(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] * b.v[i]; return r; }
inline VF vdiv(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] / b.v[i]; return r; }
inline VF vmax(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r; }
inline VF vmin(VF a, VF b) { VF r; for (int i = 0; i < 8; i++) r.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i]; return r; }
inline VF vfloor(VF a) { VF r; for (int i = 0; i < 8; i++) r.v[i] = __builtin_floorf(a.v[i]); return r; }
inline VF vpow2i(VF n) {
  VF r;
  for (int i = 0; i < 8; i++) r.v[i] = bits_to_f32(static_cast<uint32_t>(static_cast<int32_t>(n.v[i]) + 127) << 23);
  return r;
}
inline float vreduce_add(VF a) {
  float s4[4], s2[2];
  for (int i = 0; i < 4; i++) s4[i] = a.v[i] + a.v[i + 4];
  for (int i = 0; i < 2; i++) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}
#define TM_ISA_NAME "generic"
#endif

// Load W (or n < W) elements of any float dtype as f32 lanes.
inline VF vload_any(const void* p, int64_t i, DType d) {
  if (d == DType::kF32) return vload(static_cast<const float*>(p) + i);
  return vload(static_cast<const uint16_t*>(p) + i, d);
}
inline VF vload_any_part(const void* p, int64_t i, int n, DType d) {
  if (d == DType::kF32) return vload_part(static_cast<const float*>(p) + i, n);
  return vload_part(static_cast<const uint16_t*>(p) + i, n, d);
}
inline float load_scalar(const void* p, int64_t i, DType d) {
  if (d == DType::kF32) return static_cast<const float*>(p)[i];
  uint16_t h = static_cast<const uint16_t*>(p)[i];
  return d == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// exp(x) (Cephes-style: 2^n * poly(r), inputs clamped to [-87.3, 88.3]); rel. error ~2 ulp.
inline VF vexp(VF x) {
  x = vmin(vmax(x, vset1(-87.3365478515625f)), vset1(88.3762626647949f));
  VF n = vfloor(vfma(x, vset1(1.44269504088896341f), vset1(0.5f)));
  x = vsub(x, vmul(n, vset1(0.693359375f)));
  x = vsub(x, vmul(n, vset1(-2.12194440e-4f)));
  VF z = vmul(x, x);
  VF y = vset1(1.9875691500E-4f);
  y = vfma(y, x, vset1(1.3981999507E-3f));
  y = vfma(y, x, vset1(8.3334519073E-3f));
  y = vfma(y, x, vset1(4.1665795894E-2f));
  y = vfma(y, x, vset1(1.6666665459E-1f));
  y = vfma(y, x, vset1(5.0000001201E-1f));
  y = vfma(y, z, vadd(x, vset1(1.f)));
  return vmul(y, vpow2i(n));
}

}}}  // namespace tmill::cpu::TM_ISA
