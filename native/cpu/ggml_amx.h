// Shared by the two halves of the AMX matmul_ggml (avx512 library only): matmul_ggml_amx.cpp (the
// tiles, T >= 2, and the entry points) and matmul_ggml_amx_decode.cpp (T = 1 on AVX512-VNNI, computing
// the same per-element sequence). Include inside namespace TM_ISA after immintrin.h and kernels.h.
//
// The sequence, per output element and in K order, over units (one 32-code block for Q8_0, one
// 32-weight group for Q4_K):
//   P   = exact int32 dot of the unit's weight codes with its activation codes (quantize_act's, per 32)
//   acc = fma(float(P), s * dx, acc)          s: the unit's f32 weight scale, dx: the group's activation scale
//   acc = fma(m, dx * float(xs), acc)         Q4_K only: m = -(dmin * mn), xs: the group's code sum
// then out = acc (+ bias). Codes are as ggml_blocks.h decodes them (Q4_K 0..15, Q8_0 as stored); s and
// m are its f32 scales and mins. Nothing in it depends on T, the tile or the thread split.
#pragma once

// The activation pack, per 16-token block and 32-code group (kGgmlPackBlockBytes): the B tile (row r,
// column 4 t + j = code 4 r + j of token t), then the 16 tokens' dx, then their dx * float(xs).
constexpr int64_t kGgmlTileBytes = 8 * 64;
static_assert(kGgmlPackBlockBytes == kGgmlTileBytes + 128, "ggml pack layout: tile, dx[16], dx * xs[16]");

// Q6_K stays on the VNNI rows: its scales are per 16, so the sequence would take two units per group,
// and its T = 1 form (exact 16-code dots folded per half) streamed 28% slower from DRAM than the rows
// (the two tables alternated in one process, 2048 x 24576).
inline bool ggml_amx_kind(int32_t type) { return type == kQ8_0 || type == kQ4_K; }

inline __m512 ggml_amx_bias16(const MatmulGgmlArgs& a, int64_t n, int nr) {
  alignas(64) float b[16] = {0};
  if (a.bias != nullptr)
    for (int i = 0; i < nr; i++) b[i] = load_scalar(a.bias, n + i, a.bdtype);
  return _mm512_load_ps(b);
}

// One token (a.T == 1): out[n .. n + nr) from 16 weight rows at w (stride rb; rows past nr zero).
void ggml_amx_decode(const MatmulGgmlArgs& a, const uint8_t* w, int64_t rb, int64_t n, int nr);

// Scales of 16 rows at once, lane l = the row at byte offset base[l] from w (base: row offsets plus the
// block's offset in the row); exactly the f32 values of ggml_blocks.h decode_block (f16 by cvtph).
inline __m512i ggml_gather4(__m512i off, const uint8_t* w, int add) {
  return _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_set1_epi32(add)), w, 1);
}
inline __m512 ggml_f16_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }  // low 16 bits as f16
inline __m512 ggml_f16_hi(__m512i v) { return ggml_f16_lo(_mm512_srli_epi32(v, 16)); }

// Q8_0 block (d f16, 32 codes): d.
inline __m512 q8_0_scales16(const uint8_t* w, __m512i base) { return ggml_f16_lo(ggml_gather4(base, w, 0)); }

// Q4_K block (d, dmin f16, 12 bytes of 6-bit scales / mins as k_scale_min): s[g] = d * sc_g and
// m[g] = -(dmin * mn_g), g = 0..7.
inline void q4_k_scales16(const uint8_t* w, __m512i base, __m512* s, __m512* m) {
  const __m512i v0 = ggml_gather4(base, w, 0), v1 = ggml_gather4(base, w, 4), v2 = ggml_gather4(base, w, 8);
  const __m512i v3 = ggml_gather4(base, w, 12);
  const __m512i k63 = _mm512_set1_epi32(63), k15 = _mm512_set1_epi32(15), k3 = _mm512_set1_epi32(3);
  const __m512 d = ggml_f16_lo(v0), dmin = ggml_f16_hi(v0), neg = _mm512_set1_ps(-0.f);
  for (int g = 0; g < 8; g++) {
    __m512i sc, mn;
    if (g < 4) {
      sc = _mm512_and_si512(_mm512_srli_epi32(v1, 8 * g), k63);
      mn = _mm512_and_si512(_mm512_srli_epi32(v2, 8 * g), k63);
    } else {
      const int k = g - 4;
      sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v3, 8 * k), k15),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(v1, 8 * k + 6), k3), 4));
      mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v3, 8 * k + 4), k15),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(v2, 8 * k + 6), k3), 4));
    }
    s[g] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
    m[g] = _mm512_xor_ps(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)), neg);  // exactly -(dmin * mn)
  }
}
