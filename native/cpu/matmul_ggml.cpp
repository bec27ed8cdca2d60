// Weight-only matmul on ggml blocks (Backend.matmulGgml) and the row decoder behind embeddingGgml;
// spec: src/runtime/reference/ops-ggml.ts. Shapes: x quantized beforehand by quantize_act into codes
// xq [T, K] int8, scales xd [T, K/32] f32 and code sums xs [T, K/32] (Q8_0-style, once per matmul);
// w [N, row_bytes] raw blocks; out [T, N] f32. Method: for a tile of up to 16 rows of x, each weight
// row's groups of 32 are unpacked once into int8 codes and give exact integer dot products per 4
// weights with each tile row, scaled per 16-weight half into an f32 accumulator; the min term goes to
// a scalar accumulator; one horizontal sum per output. SIMD builds (all eight formats in registers):
// ggml_rows.inc, zmm on avx512, ymm on avx2, each also as a VNNI variant (dpbusd) for CPUs with
// AVX512-VNNI / AVX-VNNI; generic decodes blocks (ggml_blocks.h) into scalar loops. Per element the
// operations and their order depend only on (t, n) and the ISA variant, never on T, the tile or the
// thread split (batch invariant). Q4_K, Q6_K and Q8_0 decode (T = 1) share each activation load over
// 4 weight rows (ggml_fast.inc); measured on a loaded shared VM: see the commit that added it.
#include <cmath>

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <cstring>
#include "ggml_blocks.h"
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

#if defined(__AVX2__)
// One group of 32: the scalar loop's arithmetic lane by lane (|x| max, dx = amax / 127, id = 1 / dx,
// x * id clamped to +-127 in f32, then rounded half to even by cvtps under the default MXCSR, which
// equals rint-then-clamp because the bounds are integers). Vectorised because the scalar loop, with
// its rint per code, took about a third of an AMX Q4_K prefill matmul (0.35 ms of 1.1 at T=128,
// K=768, N=1024). Same codes, scales and sums on every table (the conformance suite's identity case).
#if defined(__AVX512F__)
inline float group_amax(const float* xv) {
  const __m512 m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xv)), _mm512_abs_ps(_mm512_loadu_ps(xv + 16)));
  return _mm512_reduce_max_ps(m);
}
inline int32_t group_codes(const float* xv, float id, int8_t* qv) {
  const __m512 vid = _mm512_set1_ps(id), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-127.f);
  const __m512i c0 = _mm512_cvtps_epi32(_mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(_mm512_loadu_ps(xv), vid), hi), lo));
  const __m512i c1 = _mm512_cvtps_epi32(_mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(_mm512_loadu_ps(xv + 16), vid), hi), lo));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qv), _mm512_cvtepi32_epi8(c0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qv + 16), _mm512_cvtepi32_epi8(c1));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(c0, c1));
}
#else
inline float group_amax(const float* xv) {
  const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_and_ps(_mm256_loadu_ps(xv), nosign);
  for (int i = 8; i < 32; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xv + i), nosign));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}
inline int32_t group_codes(const float* xv, float id, int8_t* qv) {
  const __m256 vid = _mm256_set1_ps(id), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  __m256i c[4];
  for (int i = 0; i < 4; i++)
    c[i] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(xv + 8 * i), vid), hi), lo));
  // packs interleave the 128-bit lanes: dwords come out as c0.lo c1.lo c2.lo c3.lo | c0.hi c1.hi ...
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qv), _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
  return _mm_cvtsi128_si32(t);
}
#endif
#else
inline float group_amax(const float* xv) {
  float amax = 0.f;
  for (int i = 0; i < 32; i++) amax = std::fmax(amax, std::fabs(xv[i]));
  return amax;
}
inline int32_t group_codes(const float* xv, float id, int8_t* qv) {
  int32_t sum = 0;
  for (int i = 0; i < 32; i++) {
    float v = std::rint(xv[i] * id);  // round half to even (default rounding mode)
    v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
    qv[i] = static_cast<int8_t>(v);
    sum += qv[i];
  }
  return sum;
}
#endif

}  // namespace

void quantize_act(const float* x, int8_t* q, float* d, int32_t* s, int64_t K, int64_t r0, int64_t r1) {
  const int64_t G = K / 32;
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t g = 0; g < G; g++) {
      const float* xv = x + r * K + g * 32;
      const float dx = group_amax(xv) / 127.f;
      const float id = dx != 0.f ? 1.f / dx : 0.f;
      d[r * G + g] = dx;
      s[r * G + g] = group_codes(xv, id, q + r * K + g * 32);
    }
  }
}

namespace {

// The portable path: decode each block into codes + scales (ggml_blocks.h), then every tile row.
constexpr int kTileT = 16;

void decoded_row(const MatmulGgmlArgs& a, const uint8_t* row, int64_t t0, int nt, float* av, float* am) {
  const int be = ggml_block_elems(a.type), bb = ggml_block_bytes(a.type);
  const int gpb = be / 32;
  const int64_t nb = a.K / be, G = a.K / 32;
  GgmlBlock blk;
  for (int64_t ib = 0; ib < nb; ib++) {
    decode_block(a.type, row + ib * bb, &blk);
    for (int g = 0; g < gpb; g++) {
      const int64_t gi = ib * gpb + g;
      const int8_t* c = blk.c + 32 * g;
      for (int t = 0; t < nt; t++) {
        const int64_t r = t0 + t;
        const int8_t* q = a.xq + r * a.K + gi * 32;
        const float dx = a.xd[r * G + gi];
        int32_t lo = 0, hi = 0;
        for (int i = 0; i < 16; i++) lo += static_cast<int32_t>(c[i]) * q[i];
        for (int i = 16; i < 32; i++) hi += static_cast<int32_t>(c[i]) * q[i];
        av[t] += dx * blk.s_lo[g] * static_cast<float>(lo) + dx * blk.s_hi[g] * static_cast<float>(hi);
        if (blk.m[g] != 0.f) am[t] += dx * (blk.m[g] * static_cast<float>(a.xs[r * G + gi]));
      }
    }
  }
}

[[maybe_unused]] void decoded_rows(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  float av[kTileT], am[kTileT];
  for (int64_t t0 = 0; t0 < a.T; t0 += kTileT) {
    const int nt = static_cast<int>(a.T - t0 < kTileT ? a.T - t0 : kTileT);
    for (int64_t n = n0; n < n1; n++) {
      for (int t = 0; t < nt; t++) { av[t] = 0.f; am[t] = 0.f; }
      decoded_row(a, a.w + n * a.row_bytes, t0, nt, av, am);
      for (int t = 0; t < nt; t++) {
        float v = av[t] + am[t];
        if (a.bias != nullptr) v += load_scalar(a.bias, n, a.bdtype);
        a.out[(t0 + t) * a.N + n] = v;
      }
    }
  }
}

}  // namespace

#if defined(__AVX2__)
namespace simd {
#define TM_GGML_VNNI 0
#include "ggml_rows.inc"
#undef TM_GGML_VNNI
}  // namespace simd
void matmul_ggml(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) { simd::rows(a, n0, n1); }

// The same rows with VNNI dot products (avx512: AVX512-VNNI on zmm; avx2: AVX-VNNI on ymm); dispatch.cpp
// hands this variant out only where the CPU reports the extension.
#pragma GCC push_options
#if defined(__AVX512F__)
#pragma GCC target("avx512vnni")
#else
#pragma GCC target("avxvnni")
#endif
namespace simd_vnni {
#define TM_GGML_VNNI 1
#include "ggml_rows.inc"
#undef TM_GGML_VNNI
}  // namespace simd_vnni
void matmul_ggml_vnni(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) { simd_vnni::rows(a, n0, n1); }
#pragma GCC pop_options
#else
void matmul_ggml(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) { decoded_rows(a, n0, n1); }
#endif

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
