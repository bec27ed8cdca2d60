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
    VF m = vset1(-__builtin_inff()), m1 = m, m2 = m, m3 = m;  // 4 chains (max is exact in any order)
    int64_t v = 0;
    for (; v + 4 * W <= V; v += 4 * W) {
      m = vmax(vload(l + v), m);
      m1 = vmax(vload(l + v + W), m1);
      m2 = vmax(vload(l + v + 2 * W), m2);
      m3 = vmax(vload(l + v + 3 * W), m3);
    }
    for (; v + W <= V; v += W) m = vmax(vload(l + v), m);
    m = vmax(vmax(m1, m), vmax(m3, m2));
    float lanes[W];
    vstore(lanes, m);
    float best = -__builtin_inff();
    for (int i = 0; i < W; i++) best = lanes[i] > best ? lanes[i] : best;
    for (; v < V; v++) best = l[v] > best ? l[v] : best;
    // Pass 2: first index holding it.
    int32_t idx = 0;
    int64_t j = 0;
#if defined(__AVX512F__)
    const __m512 bv = _mm512_set1_ps(best);
    for (; j + W <= V; j += W) {
      const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(l + j), bv, _CMP_EQ_OQ);
      if (eq != 0) { idx = static_cast<int32_t>(j + __builtin_ctz(eq)); j = V + 1; break; }
    }
#endif
    for (; j < V; j++) {
      if (l[j] == best) { idx = static_cast<int32_t>(j); break; }
    }
    out[r] = idx;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
