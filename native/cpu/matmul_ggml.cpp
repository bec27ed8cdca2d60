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
