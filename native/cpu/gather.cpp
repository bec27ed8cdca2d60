// Row gathers: embedding (out[t, :] = table[ids[t], :]) and gatherRows (out[s, :] = x[rows[s], :]),
// converting f16/bf16 rows to f32 in registers. Shapes: src [V, D] any float dtype, idx i32 [R]
// (validated against V by the executor before any row is copied), out [R, D] f32. argmax:
// out[s] = the lowest index of the largest value of logits[s, :] (NaN never wins).
// Threads: rows split by the executor when R * D is large. Memory-bound.
// Not benchmarked separately: < 1% of decode time in bench/cpu (argmax over 32000 f32: ~10 us).
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

void gather_rows(float* out, const void* src, DType sd, const int32_t* idx, int64_t D, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t base = static_cast<int64_t>(idx[r]) * D;
    float* o = out + r * D;
    int64_t d = 0;
    for (; d + W <= D; d += W) vstore(o + d, vload_any(src, base + d, sd));
    if (d < D) {
      int n = static_cast<int>(D - d);
      vstore_part(o + d, vload_any_part(src, base + d, n, sd), n);
    }
  }
}

void argmax(int32_t* out, const float* logits, int64_t V, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* l = logits + r * V;
    // Pass 1: vector max (ignores NaN lanes because max_ps returns the second operand on NaN).
    VF m = vset1(-__builtin_inff());
    int64_t v = 0;
    for (; v + W <= V; v += W) m = vmax(vload(l + v), m);
    float lanes[W];
    vstore(lanes, m);
    float best = -__builtin_inff();
    for (int i = 0; i < W; i++) best = lanes[i] > best ? lanes[i] : best;
    for (; v < V; v++) best = l[v] > best ? l[v] : best;
    // Pass 2: first index holding it.
    int32_t idx = 0;
    for (int64_t j = 0; j < V; j++) {
      if (l[j] == best) { idx = static_cast<int32_t>(j); break; }
    }
    out[r] = idx;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
