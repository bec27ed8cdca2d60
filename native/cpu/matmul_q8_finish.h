// The one rounding of the int8 matmul (matmul_q8.cpp, matmul_q8_amx.cpp): the exact integer dot times
// both scales (an f32 x f32 product is exact in f64), rounded once to f32, then + bias. A row with a
// non-finite activation has xd = NaN, so its outputs are NaN. Included inside namespace TM_ISA.
// Requires: kernels.h, simd.h (load_scalar).
#pragma once

inline float q8_finish(const MatmulQ8Args& a, int64_t t, int64_t n, int64_t dot) {
  const double s = static_cast<double>(a.xd[t]) * static_cast<double>(a.scales[n]);
  float v = static_cast<float>(static_cast<double>(dot) * s);
  if (a.bias != nullptr) v += load_scalar(a.bias, n, a.bdtype);
  return v;
}
