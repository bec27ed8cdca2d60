// Paged causal GQA attention with online softmax, all sequences of a step in one call.
// For query j of sequence s (token row t = qsl[s] + j, position pos = seqLen[s] - qLen[s] + j) and
// head h (kv head h / (H / Hkv)): out[t, h] = sum_p softmax_p(scale * q . k_p) v_p over key
// positions p in [lo, pos], lo = 0 or pos - window + 1 with a sliding window. Key p lives in slot
// blockTables[s, p / bs] * bs + p % bs of the [numBlocks * bs, Hkv, Dh] f32 caches.
// Method: keys in blocks of 64 from lo: scores (W-lane dot over Dh, fixed reduction), block max,
// vector exp, running (max, sum, acc[Dh]) rescaled per block. A query's result depends only on its
// own position and context, never on the rest of the batch (batch invariant).
// Threads: tasks = (seq, head, block of 16 queries), claimed dynamically. Assumes Dh <= 512 and
// validated block tables (the executor checks ids and lengths first).


#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

constexpr int KB = 64;

inline float dot(const float* a, const float* b, int64_t n) {
  VF acc = vzero();
  int64_t d = 0;
  for (; d + W <= n; d += W) acc = vfma(vload(a + d), vload(b + d), acc);
  if (d < n) {
    int r = static_cast<int>(n - d);
    acc = vfma(vload_part(a + d, r), vload_part(b + d, r), acc);
  }
  return vreduce_add(acc);
}

// acc[0:n] = acc * c + sum_i p[i] * v_i
inline void rescale(float* acc, float c, int64_t n) {
  VF cv = vset1(c);
  int64_t d = 0;
  for (; d + W <= n; d += W) vstore(acc + d, vmul(vload(acc + d), cv));
  if (d < n) { int r = static_cast<int>(n - d); vstore_part(acc + d, vmul(vload_part(acc + d, r), cv), r); }
}
inline void axpy(float* acc, float p, const float* v, int64_t n) {
  VF pv = vset1(p);
  int64_t d = 0;
  for (; d + W <= n; d += W) vstore(acc + d, vfma(pv, vload(v + d), vload(acc + d)));
  if (d < n) {
    int r = static_cast<int>(n - d);
    vstore_part(acc + d, vfma(pv, vload_part(v + d, r), vload_part(acc + d, r)), r);
  }
}

void one_query(const AttentionArgs& a, int64_t seq, int64_t h, int64_t t, int64_t pos) {
  const int64_t Dh = a.Dh, bs = a.block_size, Hkv = a.Hkv;
  const int64_t kvh = h / (a.H / Hkv);
  const float* q = a.q + (t * a.H + h) * Dh;
  const int32_t* bt = a.block_tables + seq * a.max_blocks_per_seq;
  int64_t lo = 0;
  if (a.sliding_window > 0 && pos - a.sliding_window + 1 > 0) lo = pos - a.sliding_window + 1;
  alignas(64) float acc[512];
  alignas(64) float sc[KB + 16];
  for (int64_t d = 0; d < Dh; d++) acc[d] = 0.f;
  float m = -__builtin_inff(), l = 0.f;
  for (int64_t p0 = lo; p0 <= pos; p0 += KB) {
    const int64_t n = pos + 1 - p0 < KB ? pos + 1 - p0 : KB;
    float bmax = -__builtin_inff();
    for (int64_t i = 0; i < n; i++) {
      const int64_t p = p0 + i;
      const int64_t slot = static_cast<int64_t>(bt[p / bs]) * bs + p % bs;
      float s = dot(q, a.kcache + (slot * Hkv + kvh) * Dh, Dh) * a.scale;
      sc[i] = s;
      bmax = s > bmax ? s : bmax;
    }
    const float mnew = bmax > m ? bmax : m;
    const float corr = m == -__builtin_inff() ? 0.f : __builtin_expf(m - mnew);
    VF mv = vset1(mnew);
    int64_t i = 0;
    for (; i + W <= n; i += W) vstore(sc + i, vexp(vsub(vload(sc + i), mv)));
    if (i < n) { int r = static_cast<int>(n - i); vstore_part(sc + i, vexp(vsub(vload_part(sc + i, r), mv)), r); }
    float bsum = 0.f;
    for (int64_t j = 0; j < n; j++) bsum += sc[j];
    l = l * corr + bsum;
    if (corr != 1.f) rescale(acc, corr, Dh);
    for (int64_t j = 0; j < n; j++) {
      const int64_t p = p0 + j;
      const int64_t slot = static_cast<int64_t>(bt[p / bs]) * bs + p % bs;
      axpy(acc, sc[j], a.vcache + (slot * Hkv + kvh) * Dh, Dh);
    }
    m = mnew;
  }
  float* o = a.out + (t * a.H + h) * Dh;
  const float inv = l > 0.f ? 1.f / l : 0.f;
  for (int64_t d = 0; d < Dh; d++) o[d] = acc[d] * inv;
}

}  // namespace

void attention(const AttentionArgs& a, const AttentionTask* tasks, int64_t t0, int64_t t1) {
  for (int64_t ti = t0; ti < t1; ti++) {
    const AttentionTask& tk = tasks[ti];
    const int64_t qs = a.query_start_loc[tk.seq];
    const int64_t qlen = a.query_start_loc[tk.seq + 1] - qs;
    const int64_t ctx = a.seq_lens[tk.seq];
    for (int64_t j = tk.q0; j < tk.q1; j++) one_query(a, tk.seq, tk.h, qs + j, ctx - qlen + j);
  }
}

}}}  // namespace tmill::cpu::TM_ISA
