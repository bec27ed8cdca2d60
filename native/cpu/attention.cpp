// Paged causal GQA attention with online softmax, all sequences of a step in one call.
// For query j of sequence s (token row t = qsl[s] + j, position pos = seqLen[s] - qLen[s] + j) and
// head h (kv head h / (H / Hkv)): out[t, h] = sum_p softmax_p(scale * q . k_p) v_p over key
// positions p in [lo, pos], lo = 0 or pos - window + 1 with a sliding window. Key p lives in slot
// blockTables[s, p / bs] * bs + p % bs of the [numBlocks * bs, Hkv, Dh] caches: f32, or f16/bf16
// converted to f32 as loaded (everything else, sums included, is f32 exactly as with an f32 cache).
// Method: keys in blocks of 64 from lo: scores (W-lane dot over Dh, fixed reduction), block max,
// vector exp, running (max, sum, acc[Dh]) rescaled per block. A query's result depends only on its
// own position and context, never on the rest of the batch (batch invariant).
// Threads: tasks = (seq, head, block of 16 queries), claimed dynamically; a decode query (qLen 1)
// takes a group of heads per task (query_heads: each cache row read once, front to back); prefill
// queries go 2-4 at a time per pass over the keys (attention_prefill.inc), bit-identical per query.
// Assumes Dh <= 512 and validated block tables (the executor checks ids and lengths first).
// Not benchmarked separately: < 5% of batch-1 decode at context <= 256 (bench/cpu), but ~35% of a
// 32-sequence decode step at ~192 keys (bench/cpu/profile-decode.ts): bound by reading the KV cache
// (an f16 cache halves those bytes: 32 streams, 1 thread, ~10 -> ~7 ms/step under load).
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu { namespace TM_ISA {

namespace {

constexpr int KB = 64;

// Cache element loads: KD is the cache dtype (f32, or f16/bf16 converted to f32 on load).
template <DType KD> inline VF kload(const void* c, int64_t i) {
  if constexpr (KD == DType::kF32) return vload(static_cast<const float*>(c) + i);
  else return vload(static_cast<const uint16_t*>(c) + i, KD);
}
template <DType KD> inline VF kload_part(const void* c, int64_t i, int n) {
  if constexpr (KD == DType::kF32) return vload_part(static_cast<const float*>(c) + i, n);
  else return vload_part(static_cast<const uint16_t*>(c) + i, n, KD);
}
template <DType KD> constexpr int64_t kbytes() { return KD == DType::kF32 ? 4 : 2; }
// Chunk c of a row split into NC W-lane chunks, the last holding `tail` lanes: of a cache row at
// element offset `at`, or of a query row.
template <int NC, DType KD> inline VF kchunk(const void* cache, int64_t at, int c, int tail) {
  return c == NC - 1 ? kload_part<KD>(cache, at + c * W, tail) : kload<KD>(cache, at + c * W);
}
template <int NC> inline VF qchunk(const float* q, int c, int tail) {
  return c == NC - 1 ? vload_part(q + c * W, tail) : vload(q + c * W);
}

template <DType KD>
inline float dot(const float* a, const void* b, int64_t b0, int64_t n) {
  VF acc = vzero();
  int64_t d = 0;
  for (; d + W <= n; d += W) acc = vfma(vload(a + d), kload<KD>(b, b0 + d), acc);
  if (d < n) {
    int r = static_cast<int>(n - d);
    acc = vfma(vload_part(a + d, r), kload_part<KD>(b, b0 + d, r), acc);
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
template <DType KD>
inline void axpy(float* acc, float p, const void* v, int64_t v0, int64_t n) {
  VF pv = vset1(p);
  int64_t d = 0;
  for (; d + W <= n; d += W) vstore(acc + d, vfma(pv, kload<KD>(v, v0 + d), vload(acc + d)));
  if (d < n) {
    int r = static_cast<int>(n - d);
    vstore_part(acc + d, vfma(pv, kload_part<KD>(v, v0 + d, r), vload_part(acc + d, r)), r);
  }
}

// Element offsets of the next n keys' rows in the caches, walking the block table incrementally:
// (blk, off) is the key after the last one, so there is no division per key.
inline void next_key_rows(int64_t* rows, int64_t n, const int32_t* bt, int64_t& blk, int64_t& off, int64_t bs, int64_t Hkv,
                          int64_t kvh, int64_t Dh) {
  for (int64_t i = 0; i < n; i++) {
    rows[i] = ((static_cast<int64_t>(bt[blk]) * bs + off) * Hkv + kvh) * Dh;
    if (++off == bs) { off = 0; blk++; }
  }
}

// One online-softmax step over a key block whose scores sc[0..n) peak at bmax: sc becomes the
// block's exp(score - new max), its sum is folded into l, m becomes the new max, and the return
// value is the factor the output accumulator must be rescaled by.
inline float softmax_block(float* sc, int64_t n, float bmax, float& m, float& l) {
  const float mnew = bmax > m ? bmax : m;
  const float corr = m == -__builtin_inff() ? 0.f : __builtin_expf(m - mnew);
  VF mv = vset1(mnew);
  int64_t i = 0;
  for (; i + W <= n; i += W) vstore(sc + i, vexp(vsub(vload(sc + i), mv)));
  if (i < n) { int r = static_cast<int>(n - i); vstore_part(sc + i, vexp(vsub(vload_part(sc + i, r), mv)), r); }
  float bsum = 0.f;
  for (int64_t j = 0; j < n; j++) bsum += sc[j];
  l = l * corr + bsum;
  m = mnew;
  return corr;
}

template <DType KD>
void one_query_any(const AttentionArgs& a, int64_t seq, int64_t h, int64_t t, int64_t pos) {
  const int64_t Dh = a.Dh, bs = a.block_size, Hkv = a.Hkv;
  const int64_t kvh = h / (a.H / Hkv);
  const float* q = a.q + (t * a.H + h) * Dh;
  const int32_t* bt = a.block_tables + seq * a.max_blocks_per_seq;
  int64_t lo = 0;
  if (a.sliding_window > 0 && pos - a.sliding_window + 1 > 0) lo = pos - a.sliding_window + 1;
  alignas(64) float acc[512];
  alignas(64) float sc[KB + 16];
  int64_t rows[KB];
  for (int64_t d = 0; d < Dh; d++) acc[d] = 0.f;
  float m = -__builtin_inff(), l = 0.f;
  // Walk the block table incrementally: (blk, off) of key p0, no division per key.
  int64_t blk = lo / bs, off = lo % bs;
  for (int64_t p0 = lo; p0 <= pos; p0 += KB) {
    const int64_t n = pos + 1 - p0 < KB ? pos + 1 - p0 : KB;
    next_key_rows(rows, n, bt, blk, off, bs, Hkv, kvh, Dh);
    float bmax = -__builtin_inff();
    for (int64_t i = 0; i < n; i++) {
      const float s = dot<KD>(q, a.kcache, rows[i], Dh) * a.scale;
      sc[i] = s;
      bmax = s > bmax ? s : bmax;
    }
    const float corr = softmax_block(sc, n, bmax, m, l);
    if (corr != 1.f) rescale(acc, corr, Dh);
    for (int64_t j = 0; j < n; j++) axpy<KD>(acc, sc[j], a.vcache, rows[j], Dh);
  }
  float* o = a.out + (t * a.H + h) * Dh;
  const float inv = l > 0.f ? 1.f / l : 0.f;
  for (int64_t d = 0; d < Dh; d++) o[d] = acc[d] * inv;
}

// Register-resident variant for Dh <= NC * W: q and the output accumulator live in NC vectors.
template <int NC, DType KD>
void one_query_reg(const AttentionArgs& a, int64_t seq, int64_t h, int64_t t, int64_t pos) {
  const int64_t Dh = a.Dh, bs = a.block_size, Hkv = a.Hkv;
  const int64_t kvh = h / (a.H / Hkv);
  const int tail = static_cast<int>(Dh - (NC - 1) * W);  // lanes used in the last chunk (1..W)
  const float* qp = a.q + (t * a.H + h) * Dh;
  const int32_t* bt = a.block_tables + seq * a.max_blocks_per_seq;
  int64_t lo = 0;
  if (a.sliding_window > 0 && pos - a.sliding_window + 1 > 0) lo = pos - a.sliding_window + 1;
  VF q[NC], acc[NC];
  for (int c = 0; c < NC; c++) {
    q[c] = qchunk<NC>(qp, c, tail);
    acc[c] = vzero();
  }
  alignas(64) float sc[KB + 16];
  int64_t rows[KB];  // element offset of each key's row in the caches
  float m = -__builtin_inff(), l = 0.f;
  int64_t blk = lo / bs, off = lo % bs;
  for (int64_t p0 = lo; p0 <= pos; p0 += KB) {
    const int64_t n = pos + 1 - p0 < KB ? pos + 1 - p0 : KB;
    next_key_rows(rows, n, bt, blk, off, bs, Hkv, kvh, Dh);
    float bmax = -__builtin_inff();
    for (int64_t i = 0; i < n; i++) {
      const int64_t k = rows[i];
      VF d = vzero();
      for (int c = 0; c < NC; c++)
        d = vfma(q[c], kchunk<NC, KD>(a.kcache, k, c, tail), d);
      const float s = vreduce_add(d) * a.scale;
      sc[i] = s;
      bmax = s > bmax ? s : bmax;
    }
    const float corr = softmax_block(sc, n, bmax, m, l);
    if (corr != 1.f) {
      VF cv = vset1(corr);
      for (int c = 0; c < NC; c++) acc[c] = vmul(acc[c], cv);
    }
    for (int64_t j = 0; j < n; j++) {
      const int64_t v = rows[j];
      VF pv = vset1(sc[j]);
      for (int c = 0; c < NC; c++)
        acc[c] = vfma(pv, kchunk<NC, KD>(a.vcache, v, c, tail), acc[c]);
    }
  }
  float* o = a.out + (t * a.H + h) * Dh;
  VF inv = vset1(l > 0.f ? 1.f / l : 0.f);
  for (int c = 0; c < NC; c++) {
    if (c == NC - 1) vstore_part(o + c * W, vmul(acc[c], inv), tail);
    else vstore(o + c * W, vmul(acc[c], inv));
  }
}

#include "attention_prefill.inc"

// Heads [h0, h1) of one query at once (decode): each key's cache row is read once for all heads,
// front to back (prefetcher-friendly), instead of one head's Dh floats per row per pass. Per head
// the operations and their order are exactly one_query_reg's, so results are bit-identical.
constexpr int64_t kMaxGroupHeads = 16;
template <int NC, DType KD>
void query_heads(const AttentionArgs& a, int64_t seq, int64_t h0, int64_t h1, int64_t t, int64_t pos) {
  const int64_t Dh = a.Dh, bs = a.block_size, Hkv = a.Hkv, G = a.H / Hkv, nh = h1 - h0;
  const int tail = static_cast<int>(Dh - (NC - 1) * W);
  const int32_t* bt = a.block_tables + seq * a.max_blocks_per_seq;
  int64_t lo = 0;
  if (a.sliding_window > 0 && pos - a.sliding_window + 1 > 0) lo = pos - a.sliding_window + 1;
  alignas(64) float acc[kMaxGroupHeads * NC * W];  // [nh, NC * W] output accumulators
  alignas(64) float sc[kMaxGroupHeads][KB + 16];
  float m[kMaxGroupHeads], l[kMaxGroupHeads];
  int64_t koff[kMaxGroupHeads];  // kv head offset of each head within a cache row
  const float* qh[kMaxGroupHeads];
  for (int64_t hh = 0; hh < nh; hh++) {
    for (int c = 0; c < NC; c++) vstore(acc + (hh * NC + c) * W, vzero());
    m[hh] = -__builtin_inff();
    l[hh] = 0.f;
    koff[hh] = ((h0 + hh) / G) * Dh;
    qh[hh] = a.q + (t * a.H + h0 + hh) * Dh;
  }
  int64_t rows[KB];
  int64_t blk = lo / bs, off = lo % bs;
  for (int64_t p0 = lo; p0 <= pos; p0 += KB) {
    const int64_t n = pos + 1 - p0 < KB ? pos + 1 - p0 : KB;
    next_key_rows(rows, n, bt, blk, off, bs, Hkv, 0, Dh);  // kv head 0: each head adds its koff
    // Software prefetch (the rows of a block are scattered over the cache, ~1 KiB each): K rows 4
    // keys ahead of the scores, each V row as its key is scored (used after the block's softmax).
    constexpr int64_t eb = kbytes<KD>();
    const int64_t row_lines = (Hkv * Dh * eb + 63) / 64;
    const char* kc = reinterpret_cast<const char*>(a.kcache);
    const char* vc = reinterpret_cast<const char*>(a.vcache);
    for (int64_t i = 0; i < 4 && i < n; i++)
      for (int64_t c = 0; c < row_lines; c++) __builtin_prefetch(kc + rows[i] * eb + c * 64, 0, 3);
    for (int64_t i = 0; i < n; i++) {
      if (i + 4 < n) for (int64_t c = 0; c < row_lines; c++) __builtin_prefetch(kc + rows[i + 4] * eb + c * 64, 0, 3);
      for (int64_t c = 0; c < row_lines; c++) __builtin_prefetch(vc + rows[i] * eb + c * 64, 0, 2);
      for (int64_t hh = 0; hh < nh; hh++) {
        const int64_t k = rows[i] + koff[hh];
        const float* q = qh[hh];
        VF d = vzero();
        for (int c = 0; c < NC; c++)
          d = vfma(qchunk<NC>(q, c, tail), kchunk<NC, KD>(a.kcache, k, c, tail), d);
        sc[hh][i] = vreduce_add(d) * a.scale;
      }
    }
    for (int64_t hh = 0; hh < nh; hh++) {
      float* s = sc[hh];
      float bmax = -__builtin_inff();
      for (int64_t i = 0; i < n; i++) bmax = s[i] > bmax ? s[i] : bmax;
      const float corr = softmax_block(s, n, bmax, m[hh], l[hh]);
      if (corr != 1.f) {
        VF cv = vset1(corr);
        for (int c = 0; c < NC; c++) vstore(acc + (hh * NC + c) * W, vmul(vload(acc + (hh * NC + c) * W), cv));
      }
    }
    for (int64_t j = 0; j < n; j++) {
      for (int64_t hh = 0; hh < nh; hh++) {
        const int64_t v = rows[j] + koff[hh];
        VF pv = vset1(sc[hh][j]);
        float* ac = acc + hh * NC * W;
        for (int c = 0; c < NC; c++)
          vstore(ac + c * W, vfma(pv, kchunk<NC, KD>(a.vcache, v, c, tail), vload(ac + c * W)));
      }
    }
  }
  for (int64_t hh = 0; hh < nh; hh++) {
    float* o = a.out + (t * a.H + h0 + hh) * Dh;
    VF inv = vset1(l[hh] > 0.f ? 1.f / l[hh] : 0.f);
    for (int c = 0; c < NC; c++) {
      const VF r = vmul(vload(acc + (hh * NC + c) * W), inv);
      if (c == NC - 1) vstore_part(o + c * W, r, tail);
      else vstore(o + c * W, r);
    }
  }
}

// One query, heads [h0, h1): grouped when the head dim fits the register variants.
template <DType KD>
bool query_heads_any(const AttentionArgs& a, int64_t seq, int64_t h0, int64_t h1, int64_t t, int64_t pos) {
  if (h1 - h0 > kMaxGroupHeads) return false;
  switch ((a.Dh + W - 1) / W) {
    case 1: query_heads<1, KD>(a, seq, h0, h1, t, pos); return true;
    case 2: query_heads<2, KD>(a, seq, h0, h1, t, pos); return true;
    case 3: query_heads<3, KD>(a, seq, h0, h1, t, pos); return true;
    case 4: query_heads<4, KD>(a, seq, h0, h1, t, pos); return true;
    case 5: query_heads<5, KD>(a, seq, h0, h1, t, pos); return true;
    case 6: query_heads<6, KD>(a, seq, h0, h1, t, pos); return true;
    case 7: query_heads<7, KD>(a, seq, h0, h1, t, pos); return true;
    case 8: query_heads<8, KD>(a, seq, h0, h1, t, pos); return true;
    default: return false;
  }
}

template <DType KD>
void one_query(const AttentionArgs& a, int64_t seq, int64_t h, int64_t t, int64_t pos) {
  switch ((a.Dh + W - 1) / W) {
    case 1: one_query_reg<1, KD>(a, seq, h, t, pos); return;
    case 2: one_query_reg<2, KD>(a, seq, h, t, pos); return;
    case 3: one_query_reg<3, KD>(a, seq, h, t, pos); return;
    case 4: one_query_reg<4, KD>(a, seq, h, t, pos); return;
    case 5: one_query_reg<5, KD>(a, seq, h, t, pos); return;
    case 6: one_query_reg<6, KD>(a, seq, h, t, pos); return;
    case 7: one_query_reg<7, KD>(a, seq, h, t, pos); return;
    case 8: one_query_reg<8, KD>(a, seq, h, t, pos); return;
    default: one_query_any<KD>(a, seq, h, t, pos); return;
  }
}

template <DType KD>
void attention_kd(const AttentionArgs& a, const AttentionTask* tasks, int64_t t0, int64_t t1) {
  for (int64_t ti = t0; ti < t1; ti++) {
    const AttentionTask& tk = tasks[ti];
    const int64_t qs = a.query_start_loc[tk.seq];
    const int64_t qlen = a.query_start_loc[tk.seq + 1] - qs;
    const int64_t ctx = a.seq_lens[tk.seq];
    int64_t j0 = tk.q0;
    if (tk.h1 - tk.h == 1 && tk.q1 - tk.q0 > 1) j0 = prefill_queries<KD>(a, tk.seq, tk.h, qs, ctx - qlen, tk.q0, tk.q1);
    for (int64_t j = j0; j < tk.q1; j++) {
      if (tk.h1 - tk.h > 1 && query_heads_any<KD>(a, tk.seq, tk.h, tk.h1, qs + j, ctx - qlen + j)) continue;
      for (int64_t h = tk.h; h < tk.h1; h++) one_query<KD>(a, tk.seq, h, qs + j, ctx - qlen + j);
    }
  }
}

}  // namespace

void attention(const AttentionArgs& a, const AttentionTask* tasks, int64_t t0, int64_t t1) {
  switch (a.kv_dtype) {
    case DType::kF16: attention_kd<DType::kF16>(a, tasks, t0, t1); return;
    case DType::kBF16: attention_kd<DType::kBF16>(a, tasks, t0, t1); return;
    default: attention_kd<DType::kF32>(a, tasks, t0, t1); return;
  }
}

}}}  // namespace tmill::cpu::TM_ISA
