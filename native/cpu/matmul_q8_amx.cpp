// matmul_q8 on Intel AMX tiles (Sapphire Rapids and later): the contract of matmul_q8.cpp, bit for
// bit, for prefill. The weights are the A operand as they lie (16 rows of int8 at stride K, 64 codes a
// tile: no repack), the activations the B operand, packed once per matmul by q8_pack_amx into AMX's
// 4-byte-interleaved layout. AMX multiplies int8 by int8 only, and our activation codes are int16, so
// each code is split into a signed high byte and an unsigned low byte (x = 256 * hi + lo):
//   dot = 256 * (w . hi) + (w . lo)   with tdpbssd (signed x signed) and tdpbsud (signed x unsigned).
// Both int32 tile sums are exact for K <= 65536 (|w . lo| <= 128 * 255 * K < 2^31), combined in int64,
// so the result equals every other ISA's exact integer dot and is rounded by the same q8_finish.
// Tiles (8 registers of 16 rows x 64 bytes): C = tmm0..3 (two 16-row weight groups x {hi, lo}),
// A = tmm4, tmm5 (the two weight groups), B = tmm6, tmm7 (hi and lo of one 16-token block).
// Per 64 codes of K: 4 tile loads and 4 tile dot products of 16 x 16 x 64 each. Token rows past the
// last full block of 16 and weight rows past the last group of 16 go to the AVX512-VNNI tiles.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "simd.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace tmill { namespace cpu { namespace TM_ISA {

void matmul_q8_vnni(const MatmulQ8Args& a, int64_t n0, int64_t n1);

#include "amx_common.h"
#include "matmul_q8_finish.h"

namespace {

constexpr int64_t kBlockBytes = 2 * 16 * 64;  // one 16-token x 64-code block: hi tile, then lo tile
static_assert(kBlockBytes == 64 * kQ8PackBytesPerK, "pack layout (kernels.h)");



// Rows [m0, T) of a on the VNNI tiles (they index rows from 0, so shift the row pointers).
void vnni_rows_from(const MatmulQ8Args& a, int64_t m0, int64_t n0, int64_t n1) {
  if (m0 >= a.T || n0 >= n1) return;
  MatmulQ8Args b = a;
  b.out += m0 * a.N;
  b.xq += m0 * a.ldx;
  b.xd += m0;
  b.T = a.T - m0;
  b.xpack = nullptr;
  matmul_q8_vnni(b, n0, n1);
}

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8")

void load_config() {
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette = 1;
  for (int i = 0; i < 8; i++) {
    c.colsb[i] = 64;
    c.rows[i] = 16;
  }
  TM_LOAD_TILE_CONFIG(c);
}


// hi/lo int32 sums [16 weight rows][16 tokens] -> out[t0 + t, n .. n + 16), q8_finish's arithmetic on
// vectors: the same exact int64 dot, f64 scale product, one rounding to f32 and + bias, so the same
// bits. At AMX speed this epilogue costs about what the tile products do for a short K, so it runs on
// whole output rows: transpose the sums to [token][weight row], then 16 contiguous floats per token.
void finish_group(const MatmulQ8Args& a, const int32_t* hi, const int32_t* lo, int64_t t0, int64_t n) {
  __m512i h[16], l[16];
  for (int i = 0; i < 16; i++) {
    h[i] = _mm512_load_si512(hi + 16 * i);
    l[i] = _mm512_load_si512(lo + 16 * i);
  }
  transpose16(h);
  transpose16(l);
  const __m512d sc0 = _mm512_cvtps_pd(_mm256_loadu_ps(a.scales + n));
  const __m512d sc1 = _mm512_cvtps_pd(_mm256_loadu_ps(a.scales + n + 8));
  __m512 bias = _mm512_setzero_ps();
  if (a.bias != nullptr) {
    alignas(64) float b[16];
    for (int i = 0; i < 16; i++) b[i] = load_scalar(a.bias, n + i, a.bdtype);
    bias = _mm512_load_ps(b);
  }
  for (int64_t t = 0; t < 16; t++) {
    const __m512d xd = _mm512_set1_pd(static_cast<double>(a.xd[t0 + t]));
    __m256 v[2];
    for (int half = 0; half < 2; half++) {
      const __m256i h8 = half == 0 ? _mm512_castsi512_si256(h[t]) : _mm512_extracti64x4_epi64(h[t], 1);
      const __m256i l8 = half == 0 ? _mm512_castsi512_si256(l[t]) : _mm512_extracti64x4_epi64(l[t], 1);
      const __m512i dot = _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(h8), 8), _mm512_cvtepi32_epi64(l8));
      const __m512d s = _mm512_mul_pd(xd, half == 0 ? sc0 : sc1);
      v[half] = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtepi64_pd(dot), s));
    }
    __m512 o = _mm512_insertf32x8(_mm512_castps256_ps512(v[0]), v[1], 1);
    if (a.bias != nullptr) o = _mm512_add_ps(o, bias);
    _mm512_storeu_ps(a.out + (t0 + t) * a.N + n, o);
  }
}

// Weight rows [n, n + 16 g) as g groups of tiles, each 16 rows x 64 codes contiguous (1 KiB), K / 64
// of them per group: the A operand then loads from one stream instead of 16 strided ones (a tile
// load from 16 rows K bytes apart ran at a quarter of the speed of a contiguous one).
void pack_weights(const MatmulQ8Args& a, int64_t n, int64_t groups, uint8_t* dst) {
  const int64_t K = a.K, KB = K / 64;
  for (int64_t g = 0; g < groups; g++)
    for (int64_t i = 0; i < 16; i++) {
      const int8_t* src = a.wq + (n + 16 * g + i) * K;
      uint8_t* d = dst + g * KB * 1024 + i * 64;
      for (int64_t kb = 0; kb < KB; kb++) _mm512_store_si512(d + kb * 1024, _mm512_loadu_si512(src + kb * 64));
    }
}

// Packed weight groups g, g + 1 (wp) x tokens [16 tb, 16 tb + 16) -> out columns [n, n + 32).
void tile_pair(const MatmulQ8Args& a, const uint8_t* wp, int64_t tb, int64_t n) {
  const int64_t KB = a.K / 64;
  const uint8_t* w1 = wp + KB * 1024;
  const uint8_t* xb = a.xpack + tb * KB * kBlockBytes;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t kb = 0; kb < KB; kb++) {
    _tile_loadd(4, wp + kb * 1024, 64);
    _tile_loadd(5, w1 + kb * 1024, 64);
    _tile_loadd(6, xb + kb * kBlockBytes, 64);
    _tile_loadd(7, xb + kb * kBlockBytes + kBlockBytes / 2, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbsud(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbsud(3, 5, 7);
  }
  alignas(64) int32_t c[4][256];
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  _tile_stored(2, c[2], 64);
  _tile_stored(3, c[3], 64);
  finish_group(a, c[0], c[1], tb * 16, n);
  finish_group(a, c[2], c[3], tb * 16, n + 16);
}

// One packed weight group (wp) x tokens [16 tb, 16 tb + 16) -> out columns [n, n + 16).
void tile_single(const MatmulQ8Args& a, const uint8_t* wp, int64_t tb, int64_t n) {
  const int64_t KB = a.K / 64;
  const uint8_t* xb = a.xpack + tb * KB * kBlockBytes;
  _tile_zero(0);
  _tile_zero(1);
  for (int64_t kb = 0; kb < KB; kb++) {
    _tile_loadd(4, wp + kb * 1024, 64);
    _tile_loadd(6, xb + kb * kBlockBytes, 64);
    _tile_loadd(7, xb + kb * kBlockBytes + kBlockBytes / 2, 64);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbsud(1, 4, 7);
  }
  alignas(64) int32_t c[2][256];
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  finish_group(a, c[0], c[1], tb * 16, n);
}

// Weight rows [n0, n16), n16 - n0 a multiple of 16, in L2-sized packed blocks; every token block
// passes over a block while it is packed (the thread's own scratch, so no sharing between threads).
void amx_blocks(const MatmulQ8Args& a, int64_t n0, int64_t n16) {
  const int64_t K = a.K, TB = a.T / 16;
  int64_t rows = (192 * 1024 / K) & ~int64_t{31};
  if (rows < 32) rows = 32;
  thread_local AmxScratch scratch;
  uint8_t* wp = scratch.get(static_cast<size_t>(rows * K));
  load_config();
  for (int64_t nb = n0; nb < n16; nb += rows) {
    const int64_t nb1 = nb + rows < n16 ? nb + rows : n16;
    pack_weights(a, nb, (nb1 - nb) / 16, wp);
    for (int64_t tb = 0; tb < TB; tb++) {
      int64_t n = nb;
      for (; n + 32 <= nb1; n += 32) tile_pair(a, wp + (n - nb) * K, tb, n);
      if (n < nb1) tile_single(a, wp + (n - nb) * K, tb, n);
    }
  }
  _tile_release();
}

#pragma GCC pop_options

}  // namespace

bool q8_amx_usable(int64_t T, int64_t K) { return T >= 16 && K > 0 && K % 64 == 0 && K <= 65536; }

// Packs token blocks [tb0, tb1) of the int16 codes xq [T, ldx]: block (tb, kb) holds the hi bytes of
// tokens 16 tb.. and codes 64 kb.. as a B tile (row r, column 4 t + j = code 64 kb + 4 r + j of token
// t), then the lo bytes the same way.
void q8_pack_amx(const int16_t* xq, int64_t ldx, int64_t K, uint8_t* dst, int64_t tb0, int64_t tb1) {
  const int64_t KB = K / 64;
  for (int64_t tb = tb0; tb < tb1; tb++)
    // Block by block, so each 2 KiB destination block is finished while in L1 (token by token
    // over the whole row, a long K's blocks fell out of L1 between tokens).
    for (int64_t kb = 0; kb < KB; kb++)
      for (int64_t t = 0; t < 16; t++) {
        const int16_t* x = xq + (tb * 16 + t) * ldx + kb * 64;
        uint8_t* hi = dst + (tb * KB + kb) * kBlockBytes + 4 * t;
        uint8_t* lo = hi + kBlockBytes / 2;
        const __m512i v0 = _mm512_loadu_si512(x);
        const __m512i v1 = _mm512_loadu_si512(x + 32);
        alignas(64) uint8_t h[64], l[64];
        _mm256_store_si256(reinterpret_cast<__m256i*>(h), _mm512_cvtepi16_epi8(_mm512_srai_epi16(v0, 8)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(h + 32), _mm512_cvtepi16_epi8(_mm512_srai_epi16(v1, 8)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(l), _mm512_cvtepi16_epi8(v0));
        _mm256_store_si256(reinterpret_cast<__m256i*>(l + 32), _mm512_cvtepi16_epi8(v1));
        for (int64_t r = 0; r < 16; r++) {
          std::memcpy(hi + r * 64, h + 4 * r, 4);
          std::memcpy(lo + r * 64, l + 4 * r, 4);
        }
      }
}

// With packed activations (a.xpack): full token blocks x full 16-row weight groups on AMX, the rest on
// VNNI; without them (small T, K not a multiple of 64), all of it on VNNI.
void matmul_q8_amx(const MatmulQ8Args& a, int64_t n0, int64_t n1) {
  if (a.xpack == nullptr) return matmul_q8_vnni(a, n0, n1);
  const int64_t n16 = n0 + ((n1 - n0) & ~int64_t{15});
  const int64_t T16 = a.T & ~int64_t{15};
  if (n16 > n0) amx_blocks(a, n0, n16);
  // Weight rows past the last group of 16, for the packed tokens; then the token tail, for all rows.
  if (n16 < n1) {
    MatmulQ8Args b = a;
    b.T = T16;
    b.xpack = nullptr;
    matmul_q8_vnni(b, n16, n1);
  }
  vnni_rows_from(a, T16, n0, n1);
}

}}}  // namespace tmill::cpu::TM_ISA

#endif
