// matmul: out[t, n] = sum_k x[t, k] * w[n, k] (+ bias[n]).
// Shapes: x [T, K] f32, w [N, K] f32 | f16 | bf16 (converted to f32 in registers), bias [N] any
// float dtype or null, out [T, N] f32. Row-major, no alignment assumed (unaligned loads).
// Method: "dot-product form" register tiles of MR x NR outputs (MR <= 4 rows of x, NR <= 4 rows
// of w), each output owning one W-lane vector accumulator over k = 0, W, 2W, ... (zero-filled
// tail), then one fixed horizontal reduction, then + bias. Every output element therefore sees the
// same operations in the same order whatever T, the tile shape, the chunking or the thread
// count: batch invariant by construction. Decode (T = 1) is a 1 x 4 tile streaming each weight row
// once (4 independent FMA chains); prefill keeps a 4-row x tile in L1 while it walks an N chunk
// (kept in L2 by the executor's chunking: ~64 rows of w per task).
// Threads: the executor splits N into chunks (dynamic claiming); each chunk covers all T rows.
// Measured on the 2-core Xeon dev VM (avx512, quiet moments; the VM is shared and noisy): decode
// GEMV f32 streams 14-16 GB/s from DRAM on one core, equal to a plain AVX-512 read loop (15 GB/s;
// 2 cores: 30 GB/s), ~29 GB/s from L3; prefill 4x4 tiles reach ~100 GFLOP/s per core (thread CPU
// time, T=128 K=768 N=2048; 4x6/6x4/4x8/2x8 tiles measured 55-74). bench/kernels/cpu-matmul.ts.


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
  for (int i = 0; i < MR; i++) {
    float* o = a.out + (m0 + i) * a.N + n0;
    for (int j = 0; j < NR; j++) {
      float s = vreduce_add(acc[i][j]);
      if (a.bias != nullptr) s += load_scalar(a.bias, n0 + j, a.bdtype);
      o[j] = s;
    }
  }
}

template <int MR, DType WD>
void row_tile(const MatmulArgs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) micro<MR, 4, WD>(a, m0, n);
  switch (n1 - n) {
    case 3: micro<MR, 3, WD>(a, m0, n); break;
    case 2: micro<MR, 2, WD>(a, m0, n); break;
    case 1: micro<MR, 1, WD>(a, m0, n); break;
    default: break;
  }
}

template <DType WD>
void matmul_range(const MatmulArgs& a, int64_t n0, int64_t n1) {
  int64_t m = 0;
  for (; m + 4 <= a.T; m += 4) row_tile<4, WD>(a, m, n0, n1);
  switch (a.T - m) {
    case 3: row_tile<3, WD>(a, m, n0, n1); break;
    case 2: row_tile<2, WD>(a, m, n0, n1); break;
    case 1: row_tile<1, WD>(a, m, n0, n1); break;
    default: break;
  }
}

}  // namespace

void matmul(const MatmulArgs& a, int64_t n0, int64_t n1) {
  switch (a.wdtype) {
    case DType::kF16: matmul_range<DType::kF16>(a, n0, n1); break;
    case DType::kBF16: matmul_range<DType::kBF16>(a, n0, n1); break;
    default: matmul_range<DType::kF32>(a, n0, n1); break;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
