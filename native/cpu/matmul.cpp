// matmul: out[t, n] = sum_k x[t, k] * w[n, k] (+ bias[n]).
// Shapes: x [T, K] f32, w [N, K] f32 | f16 | bf16 (converted to f32 in registers), bias [N] any
// float dtype or null, out [T, N] f32. Row-major, no alignment assumed (unaligned loads).
// Method: "dot-product form" register tiles of MR x NR outputs (MR <= 4 rows of x, NR <= 4 rows
// of w), each output owning one W-lane vector accumulator over k = 0, W, 2W, ... (zero-filled
// tail), then one fixed horizontal reduction, then + bias. Every output element therefore sees the
// same operations in the same order whatever T, the tile shape, the chunking or the thread
// count: batch invariant by construction. Decode (T = 1) is a 1 x 8 tile streaming each weight row
// once (8 independent FMA chains on avx512, else 4); prefill keeps a 4-row x tile in L1 while it walks an N chunk
// (kept in L2 by the executor's chunking: ~64 rows of w per task); with T >= 8 and f16/bf16
// weights the chunk is first converted to f32 in a per-thread scratch (bit-identical values).
// Batched decode (2 <= T <= 64): N is walked in ~24 KiB groups of weight rows (L1) with every x tile
// passing over each group and the next group prefetched, so weights stream from L3 once; 4 x 4
// tiles reduce their 16 sums together (reduce16, the same pairs as vreduce_add: bit-identical).
// Threads: the executor splits N into chunks (dynamic claiming); each chunk covers all T rows.
// Measured (bench/kernels/cpu-matmul.ts, 2-core Xeon dev VM, avx512, shared and noisy; results in
// bench/results/cpu-matmul-2026-11-25-00-51.json), f32 weights: decode GEMV 15-16 GB/s on one
// thread = a plain AVX-512 read loop (15-15.7 GB/s), 28-30 GB/s on two; prefill T=128 114-128
// GFLOP/s on one thread, 217-256 on two (4x4 tiles; 4x6/6x4/4x8/2x8 measured 55-74 on one).
// f16/bf16 weights: decode streams half the bytes; prefill converts each chunk once (~f32 GFLOP/s).
#include <stdlib.h>

#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

template <DType WD>
inline VF loadw(const void* w, int64_t i) {
  if constexpr (WD == DType::kF32) return vload(static_cast<const float*>(w) + i);
  else return vload(static_cast<const uint16_t*>(w) + i, WD);
}
template <DType WD>
inline VF loadw_part(const void* w, int64_t i, int n) {
  if constexpr (WD == DType::kF32) return vload_part(static_cast<const float*>(w) + i, n);
  else return vload_part(static_cast<const uint16_t*>(w) + i, n, WD);
}

#if defined(__AVX512F__)
// The 16 horizontal sums of a 4 x 4 tile at once: r[4 i + j] = vreduce_add(acc[i][j]) exactly (the
// same pairs are added at each level of simd.h's tree: lanes i + 8, then i + 4, i + 2, i + 1), in
// 15 vector adds instead of 16 separate reductions.
inline void reduce16(const VF (&acc)[4][4], float* r) {
  __m512 v[16], t[8], u[4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) v[4 * j + i] = acc[i][j].v;
  for (int p = 0; p < 8; p++)
    t[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44), _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
  for (int q = 0; q < 4; q++)
    u[q] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * q], t[2 * q + 1], 0x88), _mm512_shuffle_f32x4(t[2 * q], t[2 * q + 1], 0xDD));
  const __m512 w0 = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x44), _mm512_shuffle_ps(u[0], u[1], 0xEE));
  const __m512 w1 = _mm512_add_ps(_mm512_shuffle_ps(u[2], u[3], 0x44), _mm512_shuffle_ps(u[2], u[3], 0xEE));
  _mm512_store_ps(r, _mm512_add_ps(_mm512_shuffle_ps(w0, w1, 0x88), _mm512_shuffle_ps(w0, w1, 0xDD)));
}
#endif

template <int MR, int NR, DType WD>
void micro(const MatmulArgs& a, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const int64_t esz = WD == DType::kF32 ? 4 : 2;
  const float* xr[MR];
  const char* wr[NR];
  for (int i = 0; i < MR; i++) xr[i] = a.x + (m0 + i) * K;
  for (int j = 0; j < NR; j++) wr[j] = static_cast<const char*>(a.w) + (n0 + j) * K * esz;
  VF acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) acc[i][j] = vzero();
  const int64_t kfull = K - K % W;
  for (int64_t k = 0; k < kfull; k += W) {
    VF wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = loadw<WD>(wr[j], k);
    for (int i = 0; i < MR; i++) {
      VF xv = vload(xr[i] + k);
      for (int j = 0; j < NR; j++) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
  if (kfull < K) {
    const int rem = static_cast<int>(K - kfull);
    VF wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = loadw_part<WD>(wr[j], kfull, rem);
    for (int i = 0; i < MR; i++) {
      VF xv = vload_part(xr[i] + kfull, rem);
      for (int j = 0; j < NR; j++) acc[i][j] = vfma(xv, wv[j], acc[i][j]);
    }
  }
#if defined(__AVX512F__)
  if constexpr (MR == 4 && NR == 4 && W == 16) {
    alignas(64) float r[16];
    reduce16(acc, r);
    for (int i = 0; i < 4; i++) {
      float* o = a.out + (m0 + i) * a.N + n0;
      for (int j = 0; j < 4; j++) {
        float s = r[4 * i + j];
        if (a.bias != nullptr) s += load_scalar(a.bias, n0 + j, a.bdtype);
        o[j] = s;
      }
    }
    return;
  }
#endif
  for (int i = 0; i < MR; i++) {
    float* o = a.out + (m0 + i) * a.N + n0;
    for (int j = 0; j < NR; j++) {
      float s = vreduce_add(acc[i][j]);
      if (a.bias != nullptr) s += load_scalar(a.bias, n0 + j, a.bdtype);
      o[j] = s;
    }
  }
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// Decode GEMV on AVX2 (16 ymm registers): 8 weight rows streamed at once, unrolled by two vectors
// (one 64-byte line per row per step) with a software prefetch kPrefetchBytes ahead in each row, so
// enough lines are in flight to cover DRAM latency with 8 streams per core (the L2 streamer alone
// tracks fewer). Per output the operations are micro<1, NR>'s exactly: one accumulator, FMAs over
// k = 0, 8, 16, ... in order, the same zero-filled tail and vreduce_add: bit-identical results.
constexpr int64_t kPrefetchBytes = 1024;
template <DType WD>
void stream8(const MatmulArgs& a, int64_t m0, int64_t n0, bool more) {
  const int64_t K = a.K;
  constexpr int64_t esz = WD == DType::kF32 ? 4 : 2;
  const int64_t row_bytes = K * esz;
  const float* x = a.x + m0 * K;
  const char* wr[8];
  for (int j = 0; j < 8; j++) wr[j] = static_cast<const char*>(a.w) + (n0 + j) * row_bytes;
  VF acc[8];
  for (int j = 0; j < 8; j++) acc[j] = vzero();
  const int64_t kfull = K - K % W, kpair = K - K % (2 * W);
  // Past the end of its row, each row's prefetch moves on to the same row of the next tile (8 rows
  // on: rows are contiguous), so a tile starts with its first lines already on the way.
  const int64_t wrap = more ? 7 * row_bytes : -kPrefetchBytes;
  int64_t k = 0;
  for (; k < kpair; k += 2 * W) {
    const int64_t at = k * esz + kPrefetchBytes;
    const int64_t pf = at < row_bytes ? at : at + wrap;
    for (int j = 0; j < 8; j++) __builtin_prefetch(wr[j] + pf, 0, 0);
    const VF x0 = vload(x + k), x1 = vload(x + k + W);
    for (int j = 0; j < 8; j++) acc[j] = vfma(x0, loadw<WD>(wr[j], k), acc[j]);
    for (int j = 0; j < 8; j++) acc[j] = vfma(x1, loadw<WD>(wr[j], k + W), acc[j]);
  }
  for (; k < kfull; k += W) {
    const VF xv = vload(x + k);
    for (int j = 0; j < 8; j++) acc[j] = vfma(xv, loadw<WD>(wr[j], k), acc[j]);
  }
  if (kfull < K) {
    const int rem = static_cast<int>(K - kfull);
    const VF xv = vload_part(x + kfull, rem);
    for (int j = 0; j < 8; j++) acc[j] = vfma(xv, loadw_part<WD>(wr[j], kfull, rem), acc[j]);
  }
  float* o = a.out + m0 * a.N + n0;
  for (int j = 0; j < 8; j++) {
    float v = vreduce_add(acc[j]);
    if (a.bias != nullptr) v += load_scalar(a.bias, n0 + j, a.bdtype);
    o[j] = v;
  }
}
#endif

template <int MR, DType WD>
void row_tile(const MatmulArgs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  // Single x rows (decode) with 32 vector registers: 8 weight streams at once (~4% more DRAM
  // bandwidth than 4 on the dev VM). Same per-element operations, so results are unchanged.
  if constexpr (MR == 1 && W == 16)
    for (; n + 8 <= n1; n += 8) micro<1, 8, WD>(a, m0, n);
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (MR == 1)
    for (; n + 8 <= n1; n += 8) stream8<WD>(a, m0, n, n + 16 <= n1);
#endif
  for (; n + 4 <= n1; n += 4) micro<MR, 4, WD>(a, m0, n);
  switch (n1 - n) {
    case 3: micro<MR, 3, WD>(a, m0, n); break;
    case 2: micro<MR, 2, WD>(a, m0, n); break;
    case 1: micro<MR, 1, WD>(a, m0, n); break;
    default: break;
  }
}

template <DType WD>
void matmul_rows(const MatmulArgs& a, int64_t n0, int64_t n1) {
  int64_t m = 0;
  for (; m + 4 <= a.T; m += 4) row_tile<4, WD>(a, m, n0, n1);
  switch (a.T - m) {
    case 3: row_tile<3, WD>(a, m, n0, n1); break;
    case 2: row_tile<2, WD>(a, m, n0, n1); break;
    case 1: row_tile<1, WD>(a, m, n0, n1); break;
    default: break;
  }
}

// Batched decode (2 <= T <= 64): all T rows of x fit L1/L2, so walk N in groups of rows that stay
// in L1 (~24 KiB) and pass every x tile over each group: the weights stream from L3 exactly once,
// sequentially, instead of once per 4-row x tile from L2. Same micro tiles, so same results.
template <DType WD>
void matmul_range(const MatmulArgs& a, int64_t n0, int64_t n1) {
  if (a.T < 2 || a.T > 64) return matmul_rows<WD>(a, n0, n1);
  const int64_t esz = WD == DType::kF32 ? 4 : 2;
  int64_t group = (24 * 1024 / (a.K * esz)) & ~int64_t{3};
  if (group < 4) group = 4;
  const char* w = static_cast<const char*>(a.w);
  const int64_t row_bytes = a.K * esz;
  for (int64_t n = n0; n < n1; n += group) {
    const int64_t e = n + group < n1 ? n + group : n1;
    // Prefetch the next group into L2 while this one computes, a slice before each x tile.
    const int64_t pf_end = (e + group < n1 ? e + group : n1) * row_bytes;
    int64_t pf = e * row_bytes;
    const int64_t slice = ((pf_end - pf) / (((a.T + 3) / 4) * ((e - n + 3) / 4)) + 63) & ~int64_t{63};
    int64_t m = 0;
    for (; m + 4 <= a.T; m += 4) {
      int64_t q = n;
      for (; q + 4 <= e; q += 4) {
        for (const int64_t stop = pf + slice < pf_end ? pf + slice : pf_end; pf < stop; pf += 64) __builtin_prefetch(w + pf, 0, 2);
        micro<4, 4, WD>(a, m, q);
      }
      if (q < e) row_tile<4, WD>(a, m, q, e);
    }
    switch (a.T - m) {
      case 3: row_tile<3, WD>(a, m, n, e); break;
      case 2: row_tile<2, WD>(a, m, n, e); break;
      case 1: row_tile<1, WD>(a, m, n, e); break;
      default: break;
    }
  }
}

// Per-thread f32 scratch for converted weight rows (plain pointer: no std templates in ISA code).
thread_local float* t_scratch = nullptr;
thread_local int64_t t_scratch_floats = 0;

float* scratch(int64_t floats) {
  if (floats > t_scratch_floats) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, static_cast<size_t>(floats) * 4) != 0) return nullptr;
    free(t_scratch);
    t_scratch = static_cast<float*>(p);
    t_scratch_floats = floats;
  }
  return t_scratch;
}

// Prefill with f16/bf16 weights: convert the chunk's rows to f32 once, then run the f32 tiles over
// them (T / 4 tiles reuse each converted row). Same f32 values, same order: identical results.
template <DType WD>
bool matmul_converted(const MatmulArgs& a, int64_t n0, int64_t n1) {
  const int64_t rows = n1 - n0, K = a.K;
  float* buf = scratch(rows * K);
  if (buf == nullptr) return false;
  const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * K;
  const int64_t total = rows * K;
  int64_t i = 0;
  for (; i + W <= total; i += W) vstore(buf + i, vload(w + i, WD));
  if (i < total) vstore_part(buf + i, vload_part(w + i, static_cast<int>(total - i), WD), static_cast<int>(total - i));
  MatmulArgs c = a;
  c.w = buf;
  c.wdtype = DType::kF32;
  c.out = a.out + n0;
  if (a.bias != nullptr) c.bias = static_cast<const char*>(a.bias) + n0 * dtype_bytes(a.bdtype);
  matmul_range<DType::kF32>(c, 0, rows);
  return true;
}

}  // namespace

void matmul(const MatmulArgs& a, int64_t n0, int64_t n1) {
  constexpr int64_t kConvertMinT = 8;
  switch (a.wdtype) {
    case DType::kF16:
      if (a.T < kConvertMinT || !matmul_converted<DType::kF16>(a, n0, n1)) matmul_range<DType::kF16>(a, n0, n1);
      break;
    case DType::kBF16:
      if (a.T < kConvertMinT || !matmul_converted<DType::kBF16>(a, n0, n1)) matmul_range<DType::kBF16>(a, n0, n1);
      break;
    default: matmul_range<DType::kF32>(a, n0, n1); break;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
