// CpuEngine op for int8 weight matmul (Backend.matmulQ8): validates the five tensor references
// (dtypes included: the kernel reads wq as int8 and scales as f32), quantizes the activation rows
// once per call into engine scratch (int16 codes + one f32 scale per row: quantize_rows16), then
// splits N over the pool in L2-sized blocks, like op_matmul. Kernels: matmul_q8.cpp (per ISA).
#include <cfloat>
#include <cmath>

#include "engine.h"

namespace tmill { namespace cpu {

namespace {
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t kParallelMinWork = 1 << 15;
inline bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

// Rows [r0, r1) of x [*, K]: d[r] = max|x[r, :]| / 32767, q[r, k] = clamp(rne(x * (1 / d)), +-32767),
// zeros in [K, ldq). One scalar copy for every ISA, so all kernel tables see the same codes. A row
// with a non-finite value gets d = NaN (its outputs become NaN, as the float product would be); a row
// whose scale would be subnormal gets d = 0 and zero codes (its |x| < 4e-34).
void quantize_rows16(const float* x, int64_t K, int64_t ldq, int16_t* q, float* d, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * K;
    int16_t* qr = q + r * ldq;
    float amax = 0.f;
    bool finite = true;
    for (int64_t k = 0; k < K; k++) {
      const float v = std::fabs(xr[k]);
      if (!(v <= FLT_MAX)) finite = false;
      else if (v > amax) amax = v;
    }
    float dx = amax / 32767.f;
    if (!finite) dx = NAN;
    else if (dx < FLT_MIN) dx = 0.f;
    d[r] = dx;
    if (!(dx > 0.f)) {
      for (int64_t k = 0; k < ldq; k++) qr[k] = 0;
      continue;
    }
    const float id = 1.f / dx;
    for (int64_t k = 0; k < K; k++) {
      float v = std::rint(xr[k] * id);  // round half to even (default rounding mode)
      v = v > 32767.f ? 32767.f : v < -32767.f ? -32767.f : v;
      qr[k] = static_cast<int16_t>(v);
    }
    for (int64_t k = K; k < ldq; k++) qr[k] = 0;
  }
}
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
                     [&](int64_t r0, int64_t r1) { quantize_rows16(xp, K, ldx, q, d, r0, r1); });
  MatmulQ8Args m{reinterpret_cast<float*>(out.ptr), q, d, reinterpret_cast<const int8_t*>(w.ptr),
                 reinterpret_cast<const float*>(s.ptr), bias.ptr, bias.dtype, T, K, N, ldx};
  // Blocks of ~192 KiB of int8 weights stay in L2 while all T rows pass over them; parallel chunks
  // of at most one block, ~8 per thread for dynamic balancing (same policy as op_matmul).
  int64_t block = (192 * 1024 / (K > 0 ? K : 1)) & ~int64_t{3};
  if (block < 4) block = 4;
  int64_t grain = (ceil_div(N, 8 * static_cast<int64_t>(pool_.num_threads())) + 3) & ~int64_t{3};
  if (grain > block) grain = block;
  if (grain < 4) grain = 4;
  // int8 rows stream 4x fewer bytes than f32, so the fork-join pays off only from ~4x more MACs.
  if (T * N * K < 8 * kParallelMinWork) grain = N;
  const KernelTable* k = kernels_;
  pool_.parallel_for(
      N, grain,
      [&](int64_t n0, int64_t n1) { for (int64_t c = n0; c < n1; c += block) k->matmul_q8(m, c, c + block < n1 ? c + block : n1); },
      T * N * K);
  return Status::Ok();
}

}}  // namespace tmill::cpu
