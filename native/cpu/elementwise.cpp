// Elementwise ops. silu_mul: out[t, i] = silu(g) * u with g = gate_up[t, i], u = gate_up[t, I + i],
// silu(g) = g / (1 + exp(-g)) (vector exp, ~2 ulp). Shapes: gate_up [T, 2I], out [T, I].
// Threads: the executor splits rows only when large. Memory-bound.
// Not benchmarked separately: < 1% of decode time in bench/cpu.
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {
inline VF silu_times(VF g, VF u) {
  VF e = vexp(vsub(vzero(), g));
  return vmul(vdiv(g, vadd(vset1(1.f), e)), u);
}
}  // namespace

void silu_mul(float* out, const float* gate_up, int64_t I, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* g = gate_up + r * 2 * I;
    const float* u = g + I;
    float* o = out + r * I;
    int64_t i = 0;
    for (; i + W <= I; i += W) vstore(o + i, silu_times(vload(g + i), vload(u + i)));
    if (i < I) {
      int n = static_cast<int>(I - i);
      vstore_part(o + i, silu_times(vload_part(g + i, n), vload_part(u + i, n)), n);
    }
  }
}

}}}  // namespace tmill::cpu::TM_ISA
