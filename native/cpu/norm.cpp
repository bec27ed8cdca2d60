// rmsnorm / add_rmsnorm: out[r, :] = x[r, :] * (1 / sqrt(mean(x[r, :]^2) + eps)) * w[:].
// add_rmsnorm first does residual[r, :] += x[r, :] and normalizes the updated residual.
// Shapes: x, residual, out [R, D] f32; w [D] f32 | f16 | bf16. out may alias x (each row is read
// fully before it is written). Sum of squares: W-lane f32 accumulator, fixed reduction, then the
// scale in f64. Threads: rows split by the executor (only for R * D large enough). Memory-bound.
// Not benchmarked separately: < 1% of decode time in bench/cpu (one pass over R x D floats).
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

inline float sum_squares(const float* x, int64_t D) {
  VF acc = vzero();
  int64_t d = 0;
  for (; d + W <= D; d += W) { VF v = vload(x + d); acc = vfma(v, v, acc); }
  if (d < D) { VF v = vload_part(x + d, static_cast<int>(D - d)); acc = vfma(v, v, acc); }
  return vreduce_add(acc);
}

inline void scale_row(float* out, const float* x, const void* w, DType wd, int64_t D, float inv) {
  VF s = vset1(inv);
  int64_t d = 0;
  for (; d + W <= D; d += W) vstore(out + d, vmul(vmul(vload(x + d), s), vload_any(w, d, wd)));
  if (d < D) {
    int n = static_cast<int>(D - d);
    vstore_part(out + d, vmul(vmul(vload_part(x + d, n), s), vload_any_part(w, d, n, wd)), n);
  }
}

inline float inv_rms(float ss, int64_t D, float eps) {
  return static_cast<float>(1.0 / __builtin_sqrt(static_cast<double>(ss) / static_cast<double>(D) + static_cast<double>(eps)));
}

}  // namespace

void rmsnorm(float* out, const float* x, const void* w, DType wd, int64_t D, float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * D;
    scale_row(out + r * D, xr, w, wd, D, inv_rms(sum_squares(xr, D), D, eps));
  }
}

void add_rmsnorm(float* out, float* residual, const float* x, const void* w, DType wd, int64_t D, float eps,
                 int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float* res = residual + r * D;
    const float* xr = x + r * D;
    int64_t d = 0;
    for (; d + W <= D; d += W) vstore(res + d, vadd(vload(res + d), vload(xr + d)));
    if (d < D) {
      int n = static_cast<int>(D - d);
      vstore_part(res + d, vadd(vload_part(res + d, n), vload_part(xr + d, n)), n);
    }
    scale_row(out + r * D, res, w, wd, D, inv_rms(sum_squares(res, D), D, eps));
  }
}

}}}  // namespace tmill::cpu::TM_ISA
