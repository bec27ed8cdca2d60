// matmul_ggml for Q8_0 and Q4_K weights on Intel AMX tiles (the avx512amx table); the other ggml
// types go to the AVX512-VNNI rows (Q6_K: see ggml_amx.h). Every T runs the per-element sequence of
// ggml_amx.h (group by group in K order: acc = fma(float(P), s * dx, acc), plus the Q4_K min term),
// so the table stays batch
// invariant: T = 1 computes it with VNNI dots (matmul_ggml_amx_decode.cpp); T >= 2 here, 16 weight
// rows x 16 tokens per tile, tokens in the vector lanes, one transpose at the end. (The VNNI rows
// round per 4-weight lane instead, so this table's results differ from theirs within the spec's
// tolerance, not bit for bit.)
// Each 16-row group is repacked once for all the token blocks that reread it (pack_group): codes
// [G][16 rows][32] (Q4_K's nibbles unpacked), a contiguous 512-byte A tile per group, and the f32
// scales [G][16] (and Q4_K mins [G][16]) as broadcast operands. Q8_0 codes are signed (tdpbssd),
// Q4_K's unsigned (tdpbusd).
// Tiles: C = tmm0..3 (four units in flight, software pipelined), A = tmm4/5, B = tmm6/7.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ggml_blocks.h"
#include "kernels.h"
#include "simd.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace tmill { namespace cpu { namespace TM_ISA {

void matmul_ggml_vnni(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);

#include "amx_common.h"
#include "ggml_amx.h"

namespace {

constexpr int64_t kPackBlock = kGgmlPackBlockBytes;

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512vnni")

// C: 16 rows x 16 int32; A: 16 weight rows x 32 codes; B: 8 rows of 16 tokens x 4 codes.
void load_config() {
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette = 1;
  for (int i = 0; i < 4; i++) { c.colsb[i] = 64; c.rows[i] = 16; }
  for (int i = 4; i < 6; i++) { c.colsb[i] = 32; c.rows[i] = 16; }
  for (int i = 6; i < 8; i++) { c.colsb[i] = 64; c.rows[i] = 8; }
  TM_LOAD_TILE_CONFIG(c);
}

inline void st32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m256i ld32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// 16 rows (w: row 0, stride rb) repacked: codes [G][16][32], scales [G][16], mins [G][16] (Q4_K); the
// codes and f32 scales of ggml_blocks.h decode_block, decoded with SIMD (a scalar decode had cost a
// sixth of a 128-token prefill).
void pack_group(int32_t type, const uint8_t* w, int64_t rb, int64_t K, uint8_t* codes, float* scales, float* mins) {
  const __m512i row_off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(rb)));
  const int bb = ggml_block_bytes(type);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const int64_t nb = K / ggml_block_elems(type);
  for (int64_t ib = 0; ib < nb; ib++) {
    const __m512i base = _mm512_add_epi32(row_off, _mm512_set1_epi32(static_cast<int32_t>(ib * bb)));
    if (type == kQ8_0) {
      for (int64_t i = 0; i < 16; i++) st32(codes + (ib * 16 + i) * 32, ld32(w + i * rb + ib * 34 + 2));
      _mm512_store_ps(scales + ib * 16, q8_0_scales16(w, base));
      continue;
    }
    const int64_t g0 = ib * 8;  // Q4_K: 8 groups per block
    __m512 s[8], m[8];
    q4_k_scales16(w, base, s, m);
    for (int g = 0; g < 8; g++) { _mm512_store_ps(scales + (g0 + g) * 16, s[g]); _mm512_store_ps(mins + (g0 + g) * 16, m[g]); }
    for (int64_t i = 0; i < 16; i++)
      for (int j = 0; j < 4; j++) {
        const __m256i q = ld32(w + i * rb + ib * 144 + 16 + 32 * j);
        st32(codes + ((g0 + 2 * j) * 16 + i) * 32, _mm256_and_si256(q, m4));
        st32(codes + ((g0 + 2 * j + 1) * 16 + i) * 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
      }
  }
}

// Tokens [16 tb, 16 tb + nt) from a packed group: acc[i] = row i, lanes = tokens.
template <int32_t kType>
void group_block(const MatmulGgmlArgs& a, const uint8_t* codes, const float* scales, const float* mins, int64_t n, int nr,
                 int64_t tb, int nt) {
  const int64_t G = a.K / 32;
  const uint8_t* xp = a.xpack + tb * G * kPackBlock;
  // The 16 accumulators as named values, not an array: GCC kept an acc[16] array on the stack,
  // misaligned, and reloaded and stored it around each _tile_stored (its asm clobbers memory): 32
  // extra memory accesses a unit.
#define TM_ACC16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define TM_ACC_DECL(i) __m512 acc##i = _mm512_setzero_ps();
  TM_ACC16(TM_ACC_DECL)
#undef TM_ACC_DECL
  alignas(64) int32_t c[4][256];
  auto epilogue = [&](const int32_t* cu, int64_t unit) {
    const uint8_t* pb = xp + unit * kPackBlock + kGgmlTileBytes;
    const float* s = scales + unit * 16;
    const __m512 dx = _mm512_loadu_ps(reinterpret_cast<const float*>(pb));
#define TM_ACC_SCALE(i) acc##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cu + 16 * i)), _mm512_mul_ps(_mm512_set1_ps(s[i]), dx), acc##i);
    TM_ACC16(TM_ACC_SCALE)
#undef TM_ACC_SCALE
    if (kType == kQ4_K) {
      const __m512 dxs = _mm512_loadu_ps(reinterpret_cast<const float*>(pb + 64));
      const float* m = mins + unit * 16;
#define TM_ACC_MIN(i) acc##i = _mm512_fmadd_ps(_mm512_set1_ps(m[i]), dxs, acc##i);
      TM_ACC16(TM_ACC_MIN)
#undef TM_ACC_MIN
    }
  };
  // Group `unit` into C tile `ct`: A = its codes, B = its tile of the activations.
#define TM_AMX_UNIT(ct, ta, tb_, unit)              \
  _tile_zero(ct);                                  \
  _tile_loadd(ta, codes + (unit) * 512, 32);       \
  _tile_loadd(tb_, xp + (unit) * kPackBlock, 64);  \
  if (kType == kQ4_K) _tile_dpbusd(ct, ta, tb_);   \
  else _tile_dpbssd(ct, ta, tb_);
  // Software pipelined over the 4 C tiles: unit k's tile is stored only when that tile comes round
  // again (at unit k + 4, just before its reuse) and its epilogue runs one unit later still, so no
  // tile store waits on the product just issued and the vector epilogue overlaps the tile work in
  // flight. Storing all four tiles after each four units serialised zero -> product -> store (tile
  // microbenchmark: 15-21 ns per unit against 9-11 ns). Epilogues still run in unit order: the
  // per-element sequence, and so every result bit, is unchanged.
#define TM_AMX_STEP(t, ta, tb_, k)                            \
  if ((k) >= 4 && (k) - 4 < G) _tile_stored(t, c[t], 64);     \
  if ((k) < G) { TM_AMX_UNIT(t, ta, tb_, (k)) }                \
  if ((k) >= 5 && (k) - 5 < G) epilogue(c[((t) + 3) & 3], (k) - 5);
  for (int64_t u = 0; u < G + 5; u += 4) {
    TM_AMX_STEP(0, 4, 6, u)
    TM_AMX_STEP(1, 5, 7, u + 1)
    TM_AMX_STEP(2, 4, 6, u + 2)
    TM_AMX_STEP(3, 5, 7, u + 3)
  }
#undef TM_AMX_STEP
#undef TM_AMX_UNIT
  __m512i r[16];
#define TM_ACC_OUT(i) r[i] = _mm512_castps_si512(acc##i);
  TM_ACC16(TM_ACC_OUT)
#undef TM_ACC_OUT
#undef TM_ACC16
  transpose16(r);
  const __m512 bias = ggml_amx_bias16(a, n, nr);
  const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1u);
  for (int t = 0; t < nt; t++) {
    __m512 o = _mm512_castsi512_ps(r[t]);
    if (a.bias != nullptr) o = _mm512_add_ps(o, bias);
    _mm512_mask_storeu_ps(a.out + (tb * 16 + t) * a.N + n, m, o);
  }
}

// All token blocks of one packed group. `next` (bytes, or null) is the next group's weight rows,
// contiguous in the matrix: they are prefetched a slice per token block, so that pack_group finds
// them in cache instead of waiting on ~400 DRAM lines with a dozen misses in flight. Q8_0, T=128,
// weights streamed from DRAM (C harness, best of 8 alternated runs): [4096, 768] 5.42 -> 4.48 ms,
// [2304, 768] 2.39 -> 2.20 ms; _MM_HINT_T1 was no better.
template <int32_t kType>
void tiles(const MatmulGgmlArgs& a, const uint8_t* codes, const float* scales, const float* mins, int64_t n, int nr,
           const uint8_t* next, int64_t next_bytes) {
  const int64_t nblk = (a.T + 15) / 16;
  const int64_t lines = next != nullptr ? (next_bytes + 63) / 64 : 0;
  for (int64_t tb = 0; tb < nblk; tb++) {
    for (int64_t l = tb * lines / nblk; l < (tb + 1) * lines / nblk; l++)
      _mm_prefetch(reinterpret_cast<const char*>(next + l * 64), _MM_HINT_T0);
    const int nt = static_cast<int>(a.T - 16 * tb < 16 ? a.T - 16 * tb : 16);
    group_block<kType>(a, codes, scales, mins, n, nr, tb, nt);
  }
}

void amx_rows(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  const int64_t rb = a.row_bytes;
  const bool one = a.T == 1;
  const int64_t G = a.K / 32;
  if (!one) load_config();
  // A last group of fewer than 16 rows is copied, zero padded, into `tail` (16 rows are always read;
  // reading past the matrix is not allowed); `group` holds a group repacked by pack_group.
  thread_local AmxScratch tail, group;
  uint8_t* codes = one ? nullptr : group.get(static_cast<size_t>(G * 512 + 2 * G * 64));
  float* scales = one ? nullptr : reinterpret_cast<float*>(codes + G * 512);
  float* mins = one ? nullptr : scales + G * 16;
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
      ggml_amx_decode(a, w, rb, n, nr);
      continue;
    }
    pack_group(a.type, w, rb, a.K, codes, scales, mins);
    const int64_t left = n1 - n - 16;  // rows of the next group (a short one is copied to `tail`: same rows)
    const uint8_t* next = left > 0 ? a.w + (n + 16) * rb : nullptr;
    const int64_t next_bytes = (left < 16 ? left : 16) * rb;
    if (a.type == kQ4_K) tiles<kQ4_K>(a, codes, scales, mins, n, nr, next, next_bytes);
    else tiles<kQ8_0>(a, codes, scales, mins, n, nr, next, next_bytes);
  }
  if (!one) _tile_release();
}

#pragma GCC pop_options

}  // namespace

// The tile types take the tiles for every T (so T = 1 and T = 128 agree); T >= 2 needs the packed activations.
bool ggml_amx_type(int32_t type) { return ggml_amx_kind(type); }

// Token blocks [tb0, tb1) of the activations (codes xq [T, K], scales xd and code sums xs [T, K / 32]),
// zero padded past T, in the layout of ggml_amx.h.
void ggml_pack_amx(const int8_t* xq, const float* xd, const int32_t* xs, int64_t T, int64_t K, uint8_t* dst, int64_t tb0,
                   int64_t tb1) {
  const int64_t G = K / 32;
  for (int64_t tb = tb0; tb < tb1; tb++)
    for (int64_t b = 0; b < G; b++) {
      uint8_t* o = dst + (tb * G + b) * kPackBlock;
      float* dx = reinterpret_cast<float*>(o + kGgmlTileBytes);
      for (int64_t t = 0; t < 16; t++) {
        const int64_t row = tb * 16 + t;
        if (row >= T) {
          for (int64_t r = 0; r < 8; r++) std::memset(o + r * 64 + 4 * t, 0, 4);
          dx[t] = dx[16 + t] = 0.f;
          continue;
        }
        const int8_t* x = xq + row * K + b * 32;
        for (int64_t r = 0; r < 8; r++) std::memcpy(o + r * 64 + 4 * t, x + 4 * r, 4);
        dx[t] = xd[row * G + b];
        dx[16 + t] = dx[t] * static_cast<float>(xs[row * G + b]);
      }
    }
}

void matmul_ggml_amx(const MatmulGgmlArgs& a, int64_t n0, int64_t n1) {
  if (!ggml_amx_kind(a.type)) return matmul_ggml_vnni(a, n0, n1);
  if (a.T <= 1 || a.xpack != nullptr) return amx_rows(a, n0, n1);
  // Unpacked T > 1 (a caller other than the engine): token by token, the same per-element sequence.
  const int64_t G = a.K / 32;
  for (int64_t t = 0; t < a.T; t++) {
    MatmulGgmlArgs b = a;
    b.out += t * a.N;
    b.xq += t * a.K;
    b.xd += t * G;
    b.xs += t * G;
    b.T = 1;
    amx_rows(b, n0, n1);
  }
}

}}}  // namespace tmill::cpu::TM_ISA

#endif
