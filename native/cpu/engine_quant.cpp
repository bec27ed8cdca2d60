// CpuEngine op for int8 weight matmul (Backend.matmulQ8): validates the five tensor references
// (dtypes included: the kernel reads wq as int8 and scales as f32), quantizes the activation rows
// once per call into engine scratch (int16 codes + one f32 scale per row: the table's
// quantize_rows16, quantize_rows16.cpp), packs them for AMX tables, then splits N over the pool in
// L2-sized blocks, like op_matmul. Kernels: matmul_q8.cpp, matmul_q8_amx.cpp (per ISA).

#include "engine.h"

namespace tmill { namespace cpu {

namespace {
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t kParallelMinWork = 1 << 15;
inline bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

}  // namespace

Status CpuEngine::op_matmul_q8(const int32_t* a) {
  const int64_t T = a[20], K = a[21], N = a[22];
  TM_CHECK_ARG(T >= 0 && K >= 0 && N >= 0, "matmulQ8: negative shape");
  Ref out, x, w, s, bias;
  TM_RETURN_IF_ERROR(ref(a, T * N, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, T * K, &x));
  TM_RETURN_IF_ERROR(ref(a + 8, N * K, &w));
  TM_RETURN_IF_ERROR(ref(a + 12, N, &s));
  TM_RETURN_IF_ERROR(ref(a + 16, N, &bias, true));
  TM_CHECK_ARG(out.dtype == DType::kF32 && x.dtype == DType::kF32 && w.dtype == DType::kI8 && s.dtype == DType::kF32,
               "matmulQ8: expected out/x f32, wq i8, scales f32");
  TM_CHECK_ARG(bias.ptr == nullptr || is_float(bias.dtype), "matmulQ8: bias must be a float tensor");
  const int64_t ldx = (K + 31) & ~int64_t{31};
  if (static_cast<int64_t>(act16_q_.size()) < T * ldx) act16_q_.resize(static_cast<size_t>(T * ldx));
  if (static_cast<int64_t>(act16_d_.size()) < T) act16_d_.resize(static_cast<size_t>(T));
  const float* xp = reinterpret_cast<const float*>(x.ptr);
  int16_t* q = act16_q_.data();
  float* d = act16_d_.data();
  pool_.parallel_for(T, T * K < kParallelMinWork ? T : ceil_div(kParallelMinWork, K > 0 ? K : 1),
                     [&](int64_t r0, int64_t r1) { kernels_->quantize_rows16(xp, K, ldx, q, d, r0, r1); });
  const KernelTable* k = kernels_;
  // AMX tables take the full 16-token blocks packed as tile operands (a byte copy of the codes).
  const uint8_t* xpack = nullptr;
  if (k->q8_pack != nullptr && k->q8_pack_usable(T, K)) {
    const int64_t blocks = T / 16;
    const int64_t bytes = blocks * K * kQ8PackBytesPerK;
    if (static_cast<int64_t>(act16_pack_.size()) < bytes) act16_pack_.resize(static_cast<size_t>(bytes));
    uint8_t* pack = act16_pack_.data();
    pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) { k->q8_pack(q, ldx, K, pack, b0, b1); });
    xpack = pack;
  }
  MatmulQ8Args m{reinterpret_cast<float*>(out.ptr), q, d, reinterpret_cast<const int8_t*>(w.ptr),
                 reinterpret_cast<const float*>(s.ptr), bias.ptr, bias.dtype, T, K, N, ldx, xpack};
  // Blocks of ~192 KiB of int8 weights stay in L2 while all T rows pass over them; parallel chunks
  // of at most one block, ~8 per thread for dynamic balancing (same policy as op_matmul). Chunks
  // are whole tiles: 4 rows, or 32 (two AMX weight groups) with packed activations.
  const int64_t unit = xpack != nullptr ? 32 : 4;
  int64_t block = (192 * 1024 / (K > 0 ? K : 1)) / unit * unit;
  if (block < unit) block = unit;
  int64_t grain = ceil_div(ceil_div(N, 8 * static_cast<int64_t>(pool_.num_threads())), unit) * unit;
  if (grain > block) grain = block;
  if (grain < unit) grain = unit;
  // int8 rows stream 4x fewer bytes than f32, so the fork-join pays off only from ~4x more MACs.
  if (T * N * K < 8 * kParallelMinWork) grain = N;
  pool_.parallel_for(
      N, grain,
      [&](int64_t n0, int64_t n1) { for (int64_t c = n0; c < n1; c += block) k->matmul_q8(m, c, c + block < n1 ? c + block : n1); },
      T * N * K);
  return Status::Ok();
}

}}  // namespace tmill::cpu
