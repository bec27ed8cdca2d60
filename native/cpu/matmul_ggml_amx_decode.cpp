// matmul_ggml at T = 1 for the AMX table's tile types (Q8_0, Q4_K): the per-element sequence of
// ggml_amx.h, computed with AVX512-VNNI, 16 weight rows at a time. A one-column tile product would
// waste most of the tile and need a tile store per unit, so the exact unit dots P come from dpbusd
// instead: per pair of rows, dpbusd of unsigned codes with the activation group in both halves gives
// 4-code partial sums; a fixed tree of lane shuffles and adds folds them into one P per row, in a lane order of rows that the scales are gathered in too and that one permute undoes
// at the end. Q4_K codes are unsigned as stored; Q8_0's are flipped to w ^ 0x80 and the offset taken
// out exactly (-128 * quantize_act's code sum). Decode streams every weight once, as 16
// row streams per group that the hardware prefetcher follows poorly, so each superblock also prefetches
// the next group's rows (contiguous) at the rate this group is consumed.
#include <cstdint>
#include <cstring>

#include "ggml_blocks.h"
#include "kernels.h"
#include "simd.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

#ifndef TM_GGML_AMX_PF_GROUPS  // how many 16-row groups ahead decode prefetches
#define TM_GGML_AMX_PF_GROUPS 1
#endif

namespace tmill { namespace cpu { namespace TM_ISA {

#include "ggml_amx.h"

namespace {

#pragma GCC push_options
#pragma GCC target("avx512vnni")

// Lane l of a folded P holds row kLaneRow[l] (a 4 x 4 transpose of the rows: its own inverse).
alignas(64) constexpr int32_t kLaneRow[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

inline __m512i ld_pair(const uint8_t* r0, int64_t rb) {  // 32 bytes of a row and of the next one
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + rb)), 1);
}
inline __m512i bcast32(const int8_t* x) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))); }
inline __m512i row_offsets(const int32_t* rows, int64_t rb) {
  return _mm512_mullo_epi32(_mm512_load_si512(rows), _mm512_set1_epi32(static_cast<int32_t>(rb)));
}
inline void prefetch(const char* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes + 63; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

// z[p]: rows 2p (lanes 0-7) and 2p + 1 (8-15), 8 partials each -> one sum per row, lane order kLaneRow.
inline __m512i fold_rows(const __m512i (&z)[8]) {
  __m512i y[4];  // rows 4 q .. 4 q + 3, one per 128-bit lane, 4 partials each
  for (int q = 0; q < 4; q++)
    y[q] = _mm512_add_epi32(_mm512_shuffle_i32x4(z[2 * q], z[2 * q + 1], 0x88), _mm512_shuffle_i32x4(z[2 * q], z[2 * q + 1], 0xDD));
  const __m512i e = _mm512_add_epi32(_mm512_unpacklo_epi32(y[0], y[1]), _mm512_unpackhi_epi32(y[0], y[1]));
  const __m512i f = _mm512_add_epi32(_mm512_unpacklo_epi32(y[2], y[3]), _mm512_unpackhi_epi32(y[2], y[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(e, f), _mm512_unpackhi_epi64(e, f));
}

void store16(const MatmulGgmlArgs& a, __m512 acc, const int32_t* lane_of_row, int64_t n, int nr) {
  acc = _mm512_permutexvar_ps(_mm512_load_si512(lane_of_row), acc);
  if (a.bias != nullptr) acc = _mm512_add_ps(acc, ggml_amx_bias16(a, n, nr));
  _mm512_mask_storeu_ps(a.out + n, static_cast<__mmask16>((1u << nr) - 1u), acc);
}

void decode_q8_0(const MatmulGgmlArgs& a, const uint8_t* w, int64_t rb, int64_t n, int nr) {
  const int64_t G = a.K / 32;
  const __m512i row_off = row_offsets(kLaneRow, rb), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const char* pf = reinterpret_cast<const char*>(w + TM_GGML_AMX_PF_GROUPS * 16 * rb);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < G; b++) {
    prefetch(pf + b * 16 * 34, 16 * 34);
    const __m512i x2 = bcast32(a.xq + b * 32);
    __m512i z[8];
    for (int p = 0; p < 8; p++) z[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(ld_pair(w + 2 * p * rb + b * 34 + 2, rb), flip), x2);
    const __m512i P = _mm512_sub_epi32(fold_rows(z), _mm512_set1_epi32(128 * a.xs[b]));
    const __m512 s = _mm512_mul_ps(q8_0_scales16(w, _mm512_add_epi32(row_off, _mm512_set1_epi32(static_cast<int32_t>(b * 34)))),
                                   _mm512_set1_ps(a.xd[b]));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(P), s, acc);
  }
  store16(a, acc, kLaneRow, n, nr);
}

// Q4_K block: d, dmin (f16), 12 bytes of 6-bit scales / mins (k_scale_min), 128 bytes of nibbles:
// byte 32 j + i holds code i of group 2 j (low nibble) and of group 2 j + 1 (high nibble).
void decode_q4_k(const MatmulGgmlArgs& a, const uint8_t* w, int64_t rb, int64_t n, int nr) {
  const int64_t nb = a.K / 256;
  const __m512i row_off = row_offsets(kLaneRow, rb), m4 = _mm512_set1_epi8(0x0F);
  const char* pf = reinterpret_cast<const char*>(w + TM_GGML_AMX_PF_GROUPS * 16 * rb);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ib++) {
    prefetch(pf + ib * 16 * 144, 16 * 144);
    const __m512i base = _mm512_add_epi32(row_off, _mm512_set1_epi32(static_cast<int32_t>(ib * 144)));
    __m512 sg[8], mg[8];
    q4_k_scales16(w, base, sg, mg);
    for (int j = 0; j < 4; j++) {
      __m512i zl[8], zh[8];
      const __m512i xl = bcast32(a.xq + ib * 256 + 64 * j), xh = bcast32(a.xq + ib * 256 + 64 * j + 32);
      for (int p = 0; p < 8; p++) {
        const __m512i raw = ld_pair(w + 2 * p * rb + ib * 144 + 16 + 32 * j, rb);
        zl[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(raw, m4), xl);
        zh[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4), xh);
      }
      for (int h = 0; h < 2; h++) {
        const int g = 2 * j + h;
        const int64_t gi = ib * 8 + g;
        const float dx = a.xd[gi];
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_rows(h ? zh : zl)), _mm512_mul_ps(sg[g], _mm512_set1_ps(dx)), acc);
        acc = _mm512_fmadd_ps(mg[g], _mm512_set1_ps(dx * static_cast<float>(a.xs[gi])), acc);
      }
    }
  }
  store16(a, acc, kLaneRow, n, nr);
}

#pragma GCC pop_options

}  // namespace

void ggml_amx_decode(const MatmulGgmlArgs& a, const uint8_t* w, int64_t rb, int64_t n, int nr) {
  if (a.type == kQ4_K) decode_q4_k(a, w, rb, n, nr);
  else decode_q8_0(a, w, rb, n, nr);
}

}}}  // namespace tmill::cpu::TM_ISA

#endif
