// matmul_ggml for Q8_0 weights on Intel AMX tiles (the avx512amx table); other types go to the
// AVX512-VNNI rows. The activations are matmul_ggml's (quantize_act: int8 codes per 32 with scale dx).
// Per element, block by block in K order:
//   P = exact int32 dot of the 32 weight codes with the 32 activation codes (one tdpbssd, K = 32),
//   acc = fma(float(P), dw * dx, acc)   (dw: the block's f16 scale; dx: the activation group scale),
// then out = acc (+ bias). That sequence depends only on (t, n), never on T, the tile or the thread
// split, so the table stays batch invariant: decode (T = 1) runs the same tiles, one token column
// wide, with the output rows in the vector lanes; T >= 2 runs 16-token blocks (zero padded, packed by
// ggml_pack_q8_amx) with the tokens in the lanes. (The VNNI rows round per 4-weight lane instead, so
// this table's Q8_0 results differ from theirs within the spec's tolerance, not bit for bit.)
// The weights are the A operand in place: 16 rows x the 32 codes of block b, at stride row_bytes.
// Tiles: C = tmm0..3 (four blocks in flight), A = tmm4/5, B = tmm6/7.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ggml_blocks.h"
#include "kernels.h"
#include "simd.h"

#ifndef TM_GGML_AMX_PF_GROUPS
#define TM_GGML_AMX_PF_GROUPS 1
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace tmill { namespace cpu { namespace TM_ISA {

void matmul_ggml_vnni(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);

#include "amx_common.h"

namespace {

constexpr int64_t kTileBytes = 8 * 64;             // B tile of one block: 8 rows (32 codes / 4) x 16 tokens x 4
constexpr int64_t kPackBlock = kGgmlPackBlockBytes;  // + the 16 tokens' dx of that block (kernels.h)
static_assert(kPackBlock == kTileBytes + 64, "pack layout");


#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512vnni")

// cols = bytes per row of B and C: 64 for 16-token blocks, 4 for one token.
void load_config(int cols) {
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette = 1;
  for (int i = 0; i < 4; i++) { c.colsb[i] = static_cast<uint16_t>(cols); c.rows[i] = 16; }
  for (int i = 4; i < 6; i++) { c.colsb[i] = 32; c.rows[i] = 16; }
  for (int i = 6; i < 8; i++) { c.colsb[i] = static_cast<uint16_t>(cols); c.rows[i] = 8; }
  _tile_loadconfig(&c);
}

// The f16 scales of block b of 16 rows (w: row 0, stride rb) as f32 lanes (lane i = row i).
inline __m512 row_scales(const uint8_t* w, int64_t rb, int64_t b) {
  const __m512i idx = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                          _mm512_set1_epi32(static_cast<int32_t>(rb))),
                                       _mm512_set1_epi32(static_cast<int32_t>(b * 34)));
  const __m512i v = _mm512_i32gather_epi32(idx, w, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}


inline __m512 bias16(const MatmulGgmlArgs& a, int64_t n, int nr) {
  alignas(64) float b[16] = {0};
  if (a.bias != nullptr)
    for (int i = 0; i < nr; i++) b[i] = load_scalar(a.bias, n + i, a.bdtype);
  return _mm512_load_ps(b);
}

// Four blocks b .. b + 3 into C tiles 0..3 (A, B alternate between two tiles each).
#define TM_AMX_BLOCK(c, ta, tb, blk)                                          \
  _tile_zero(c);                                                              \
  _tile_loadd(ta, w + (blk) * 34 + 2, rb);                                    \
  _tile_loadd(tb, xb(blk), bstride);                                          \
  _tile_dpbssd(c, ta, tb);

// One token (T = 1): out[n .. n + nr). A one-column tile product wastes most of the tile and
// needs a tile store per block, so decode computes the same exact P with AVX512-VNNI instead:
// per pair of rows, dpbusd of (w ^ 0x80) (unsigned) with the activation block in both halves gives
// 8 partial sums per row, and P = sum - 128 * sum(x) (quantize_act's code sum: exact). A fixed tree of
// lane shuffles and adds folds the 8 vectors into one P per row, in the lane order kLaneRow (a 4 x 4
// transpose of the rows, undone once at the end); then the same fma as the tiles, in the same order.
alignas(64) constexpr int32_t kLaneRow[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

// Exact P of block b for 16 rows (w: row 0, stride rb), lane l = row kLaneRow[l].
inline __m512i block_dots(const uint8_t* w, int64_t rb, int64_t b, __m512i x2, int32_t xsum) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i z[8];
  for (int p = 0; p < 8; p++) {
    const uint8_t* r0 = w + (2 * p) * rb + b * 34 + 2;
    const __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0))),
                                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + rb)), 1);
    z[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, flip), x2);
  }
  // Rows 4 q .. 4 q + 3, one per 128-bit lane, 4 partials each.
  __m512i y[4];
  for (int q = 0; q < 4; q++)
    y[q] = _mm512_add_epi32(_mm512_shuffle_i32x4(z[2 * q], z[2 * q + 1], 0x88), _mm512_shuffle_i32x4(z[2 * q], z[2 * q + 1], 0xDD));
  const __m512i e = _mm512_add_epi32(_mm512_unpacklo_epi32(y[0], y[1]), _mm512_unpackhi_epi32(y[0], y[1]));
  const __m512i f = _mm512_add_epi32(_mm512_unpacklo_epi32(y[2], y[3]), _mm512_unpackhi_epi32(y[2], y[3]));
  const __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(e, f), _mm512_unpackhi_epi64(e, f));
  return _mm512_sub_epi32(s, _mm512_set1_epi32(128 * xsum));
}

void group_one(const MatmulGgmlArgs& a, const uint8_t* w, int64_t rb, int64_t n, int nr) {
  const int64_t G = a.K / 32;
  const __m512i lane_row = _mm512_load_si512(kLaneRow);
  const __m512i row_off = _mm512_mullo_epi32(lane_row, _mm512_set1_epi32(static_cast<int32_t>(rb)));
  // Decode streams every weight once: 16 row streams per group, which the hardware prefetcher
  // follows poorly. The next group's rows are contiguous, so each block prefetches it linearly at
  // the rate this group is consumed (16 rows x 34 bytes per block).
  const char* pf = reinterpret_cast<const char*>(w + TM_GGML_AMX_PF_GROUPS * 16 * rb);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < G; b++) {
    for (int64_t o = 0; o < 16 * 34 + 63; o += 64) _mm_prefetch(pf + b * 16 * 34 + o, _MM_HINT_T0);
    const __m512i x2 = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq + b * 32)));
    const __m512i p = block_dots(w, rb, b, x2, a.xs[b]);
    const __m512i dwi = _mm512_i32gather_epi32(_mm512_add_epi32(row_off, _mm512_set1_epi32(static_cast<int32_t>(b * 34))), w, 1);
    const __m512 s = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(dwi)), _mm512_set1_ps(a.xd[b]));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc);
  }
  acc = _mm512_permutexvar_ps(lane_row, acc);  // kLaneRow is its own inverse
  if (a.bias != nullptr) acc = _mm512_add_ps(acc, bias16(a, n, nr));
  _mm512_mask_storeu_ps(a.out + n, static_cast<__mmask16>((1u << nr) - 1u), acc);
}

// A row group's blocks repacked for the token blocks that all reread it: codes [G][16 rows][32]
// (a contiguous 512-byte A tile per block; loads from 16 rows row_bytes apart ran slower) and the
// f16 scales as f32 [G][16] (a broadcast operand per row, not a gather per block).
void pack_group(const uint8_t* w, int64_t rb, int64_t G, uint8_t* codes, float* scales) {
  for (int64_t b = 0; b < G; b++) {
    for (int64_t i = 0; i < 16; i++) {
      const uint8_t* blk = w + i * rb + b * 34;
      std::memcpy(codes + (b * 16 + i) * 32, blk + 2, 32);
    }
    _mm512_store_ps(scales + b * 16, row_scales(w, rb, b));
  }
}

// Tokens [16 tb, 16 tb + nt) from the packed blocks: acc[i] = row i, lanes = tokens; one transpose at
// the end turns them into output rows.
void group_block(const MatmulGgmlArgs& a, const uint8_t* codes, const float* scales, int64_t n, int nr, int64_t tb,
                 int nt) {
  const int64_t G = a.K / 32;
  const uint8_t* xp = a.xpack + tb * G * kPackBlock;
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
  alignas(64) int32_t c[4][256];
  auto epilogue = [&](int u, int64_t blk) {
    const float* dw = scales + blk * 16;
    const __m512 dx = _mm512_loadu_ps(reinterpret_cast<const float*>(xp + blk * kPackBlock + kTileBytes));
    for (int i = 0; i < 16; i++) {
      const __m512 s = _mm512_mul_ps(_mm512_set1_ps(dw[i]), dx);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[u] + 16 * i)), s, acc[i]);
    }
  };
#define TM_AMX_PACKED(c, ta, tb_, blk)                       \
  _tile_zero(c);                                            \
  _tile_loadd(ta, codes + (blk) * 512, 32);                 \
  _tile_loadd(tb_, xp + (blk) * kPackBlock, 64);            \
  _tile_dpbssd(c, ta, tb_);
  int64_t b = 0;
  for (; b + 4 <= G; b += 4) {
    TM_AMX_PACKED(0, 4, 6, b)
    TM_AMX_PACKED(1, 5, 7, b + 1)
    TM_AMX_PACKED(2, 4, 6, b + 2)
    TM_AMX_PACKED(3, 5, 7, b + 3)
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
    for (int u = 0; u < 4; u++) epilogue(u, b + u);
  }
  for (; b < G; b++) {
    TM_AMX_PACKED(0, 4, 6, b)
    _tile_stored(0, c[0], 64);
    epilogue(0, b);
  }
#undef TM_AMX_PACKED
  __m512i r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(acc[i]);
  transpose16(r);
  const __m512 bias = bias16(a, n, nr);
  const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1u);
  for (int t = 0; t < nt; t++) {
    __m512 o = _mm512_castsi512_ps(r[t]);
    if (a.bias != nullptr) o = _mm512_add_ps(o, bias);
    _mm512_mask_storeu_ps(a.out + (tb * 16 + t) * a.N + n, m, o);
  }
}

#undef TM_AMX_BLOCK


void amx_q8_0(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  const int64_t rb = a.row_bytes;
  const bool one = a.T == 1;
  if (!one) load_config(64);
  const int64_t TB = (a.T + 15) / 16;
  // A last group of fewer than 16 rows is copied, zero padded, into `tail` (the A tile always loads
  // 16 rows; reading past the matrix is not allowed); `group` holds a group repacked by pack_group.
  thread_local AmxScratch tail, group;
  const int64_t G = a.K / 32;
  uint8_t* codes = one ? nullptr : group.get(static_cast<size_t>(G * 512 + G * 64));
  float* scales = one ? nullptr : reinterpret_cast<float*>(codes + G * 512);
  for (int64_t n = n0; n < n1; n += 16) {
    const int nr = static_cast<int>(n1 - n < 16 ? n1 - n : 16);
    const uint8_t* w = a.w + n * rb;
    if (nr < 16) {
      uint8_t* t = tail.get(static_cast<size_t>(16 * rb));
      std::memset(t, 0, static_cast<size_t>(16 * rb));
      std::memcpy(t, w, static_cast<size_t>(nr * rb));
      w = t;
    }
    if (one) {
      group_one(a, w, rb, n, nr);
      continue;
    }
    pack_group(w, rb, G, codes, scales);
    for (int64_t tb = 0; tb < TB; tb++) {
      const int nt = static_cast<int>(a.T - 16 * tb < 16 ? a.T - 16 * tb : 16);
      group_block(a, codes, scales, n, nr, tb, nt);
    }
  }
  if (!one) _tile_release();
}

#pragma GCC pop_options

}  // namespace

// Q8_0 takes the tiles for every T (so T = 1 and T = 128 agree); T >= 2 needs the packed activations.
bool ggml_amx_type(int32_t type) { return type == kQ8_0; }

// Token blocks [tb0, tb1) of the activation codes xq [T, K] and scales xd [T, K / 32], zero padded past
// T: per block of 32 codes, a B tile (row r, column 4 t + j = code 32 b + 4 r + j of token t) and the
// 16 tokens' dx.
void ggml_pack_amx(const int8_t* xq, const float* xd, int64_t T, int64_t K, uint8_t* dst, int64_t tb0, int64_t tb1) {
  const int64_t G = K / 32;
  for (int64_t tb = tb0; tb < tb1; tb++)
    for (int64_t b = 0; b < G; b++) {
      uint8_t* o = dst + (tb * G + b) * kPackBlock;
      float* dx = reinterpret_cast<float*>(o + kTileBytes);
      for (int64_t t = 0; t < 16; t++) {
        const int64_t row = tb * 16 + t;
        if (row >= T) {
          for (int64_t r = 0; r < 8; r++) std::memset(o + r * 64 + 4 * t, 0, 4);
          dx[t] = 0.f;
          continue;
        }
        const int8_t* x = xq + row * K + b * 32;
        for (int64_t r = 0; r < 8; r++) std::memcpy(o + r * 64 + 4 * t, x + 4 * r, 4);
        dx[t] = xd[row * G + b];
      }
    }
}

void matmul_ggml_amx(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  if (a.type != kQ8_0) return matmul_ggml_vnni(a, n0, n1);
  if (a.T <= 1 || a.xpack != nullptr) return amx_q8_0(a, n0, n1);
  // Unpacked T > 1 (a caller other than the engine): token by token, the same per-element sequence.
  const int64_t G = a.K / 32;
  for (int64_t t = 0; t < a.T; t++) {
    MatmulGgmlArgs b = a;
    b.out += t * a.N;
    b.xq += t * a.K;
    b.xd += t * G;
    b.xs += t * G;
    b.T = 1;
    amx_q8_0(b, n0, n1);
  }
}

}}}  // namespace tmill::cpu::TM_ISA

#endif
