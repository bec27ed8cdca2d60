// CpuEngine ops over positions and the paged KV cache: rope, kvWrite and attention. Each checks
// the indices it reads from tensors (slots, block ids, lengths) before touching memory, then splits
// the work over the pool (see engine.cpp for the buffer registry and the command loop).
#include <cmath>
#include <cstring>
#include <vector>

#include "engine.h"

namespace tmill { namespace cpu {

namespace {
inline float as_f32(int32_t v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t kParallelMinWork = 1 << 15;

// cs[0:half] = cos, cs[half:2 half] = sin of the angle rounded to f32 (as HF computes it), in f64.
inline void rope_angles(int32_t pos, const float* inv, int64_t half, float* cs) {
  for (int64_t i = 0; i < half; i++) {
    const double ang = static_cast<double>(static_cast<float>(pos) * inv[i]);
    cs[i] = static_cast<float>(std::cos(ang));
    cs[half + i] = static_cast<float>(std::sin(ang));
  }
}
// dst = src rotated (rotate_half layout); dst may equal src.
inline void rotate_into(float* dst, const float* src, const float* cs, int64_t half) {
  for (int64_t i = 0; i < half; i++) {
    const float x0 = src[i], x1 = src[i + half], c = cs[i], s = cs[half + i];
    dst[i] = x0 * c - x1 * s;
    dst[i + half] = x1 * c + x0 * s;
  }
}
inline bool kv_dtype_ok(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }
// dst[i] = src[i] rounded to the cache dtype (round to nearest even for f16/bf16).
inline void store_kv(char* dst, DType d, const float* src, int64_t n) {
  if (d == DType::kF32) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); return; }
  uint16_t* h = reinterpret_cast<uint16_t*>(dst);
  if (d == DType::kF16) for (int64_t i = 0; i < n; i++) h[i] = f32_to_f16(src[i]);
  else for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]);
}
}  // namespace

Status CpuEngine::op_rope(const int32_t* a) {
  const int64_t T = a[16], H = a[17], Hkv = a[18], Dh = a[19], half = Dh / 2;
  Ref q, kk, pos, inv;
  TM_RETURN_IF_ERROR(ref(a, T * H * Dh, &q));
  TM_RETURN_IF_ERROR(ref(a + 4, T * Hkv * Dh, &kk));
  TM_RETURN_IF_ERROR(ref(a + 8, T, &pos));
  TM_RETURN_IF_ERROR(ref(a + 12, half, &inv));
  float* qp = reinterpret_cast<float*>(q.ptr);
  float* kp = reinterpret_cast<float*>(kk.ptr);
  const int32_t* pp = reinterpret_cast<const int32_t*>(pos.ptr);
  const float* ip = reinterpret_cast<const float*>(inv.ptr);
  auto rows = [&](int64_t t0, int64_t t1) {
    float cs[1024];
    for (int64_t t = t0; t < t1; t++) {
      rope_angles(pp[t], ip, half, cs);
      for (int64_t h = 0; h < H; h++) rotate_into(qp + (t * H + h) * Dh, qp + (t * H + h) * Dh, cs, half);
      for (int64_t h = 0; h < Hkv; h++) rotate_into(kp + (t * Hkv + h) * Dh, kp + (t * Hkv + h) * Dh, cs, half);
    }
  };
  TM_CHECK_ARG(Dh % 2 == 0 && Dh <= 1024, "rope: head dim %lld must be even and <= 1024", static_cast<long long>(Dh));
  pool_.parallel_for(T, T * (H + Hkv) * Dh < kParallelMinWork ? T : 8, rows);
  return Status::Ok();
}

// Fused rope + kvWrite from an interleaved qkv [T, (H + 2 Hkv) * Dh]: same arithmetic as op_rope
// followed by op_kv_write on the split heads, so results are bit-identical to the unfused ops.
Status CpuEngine::op_rope_kv_write_qkv(const int32_t* a) {
  const int64_t T = a[28], H = a[29], Hkv = a[30], Dh = a[31], slots_total = a[32], half = Dh / 2;
  const int64_t row_in = (H + 2 * Hkv) * Dh, row_kv = Hkv * Dh;
  TM_CHECK_ARG(Dh % 2 == 0 && Dh <= 1024, "ropeKvWriteQkv: head dim %lld must be even and <= 1024", static_cast<long long>(Dh));
  Ref qo, qkv, kc, vc, pos, inv, sl;
  TM_RETURN_IF_ERROR(ref(a, T * H * Dh, &qo));
  TM_RETURN_IF_ERROR(ref(a + 4, T * row_in, &qkv));
  TM_RETURN_IF_ERROR(ref(a + 8, slots_total * row_kv, &kc));
  TM_RETURN_IF_ERROR(ref(a + 12, slots_total * row_kv, &vc));
  TM_RETURN_IF_ERROR(ref(a + 16, T, &pos));
  TM_RETURN_IF_ERROR(ref(a + 20, half, &inv));
  TM_RETURN_IF_ERROR(ref(a + 24, T, &sl));
  const DType kd = kc.dtype;
  TM_CHECK_ARG(kv_dtype_ok(kd) && vc.dtype == kd, "ropeKvWriteQkv: cache dtypes must match and be f32, f16 or bf16");
  const int64_t eb = dtype_bytes(kd);
  const int32_t* s = reinterpret_cast<const int32_t*>(sl.ptr);
  for (int64_t t = 0; t < T; t++)
    TM_CHECK_RANGE(s[t] < slots_total, "ropeKvWriteQkv: slot %d at row %lld is outside [0, %lld)", s[t],
                   static_cast<long long>(t), static_cast<long long>(slots_total));
  float* qp = reinterpret_cast<float*>(qo.ptr);
  const float* xp = reinterpret_cast<const float*>(qkv.ptr);
  char* kp = kc.ptr;
  char* vp = vc.ptr;
  const int32_t* pp = reinterpret_cast<const int32_t*>(pos.ptr);
  const float* ip = reinterpret_cast<const float*>(inv.ptr);
  auto rows = [&](int64_t t0, int64_t t1) {
    float cs[1024];
    std::vector<float> krot(kd == DType::kF32 ? 0 : static_cast<size_t>(row_kv));
    for (int64_t t = t0; t < t1; t++) {
      rope_angles(pp[t], ip, half, cs);
      const float* x = xp + t * row_in;
      for (int64_t h = 0; h < H; h++) rotate_into(qp + (t * H + h) * Dh, x + h * Dh, cs, half);
      if (s[t] < 0) continue;
      char* kdst = kp + s[t] * row_kv * eb;
      // f32 cache: rotate straight into it; f16/bf16: rotate to f32, then round (same values as kvWrite).
      float* kr = kd == DType::kF32 ? reinterpret_cast<float*>(kdst) : krot.data();
      for (int64_t h = 0; h < Hkv; h++) rotate_into(kr + h * Dh, x + (H + h) * Dh, cs, half);
      if (kd != DType::kF32) store_kv(kdst, kd, kr, row_kv);
      store_kv(vp + s[t] * row_kv * eb, kd, x + (H + Hkv) * Dh, row_kv);
    }
  };
  pool_.parallel_for(T, T * (H + Hkv) * Dh < kParallelMinWork ? T : 8, rows);
  return Status::Ok();
}

Status CpuEngine::op_kv_write(const int32_t* a) {
  const int64_t T = a[20], Hkv = a[21], Dh = a[22], slots_total = a[23], row = Hkv * Dh;
  Ref kc, vc, k, v, sl;
  TM_RETURN_IF_ERROR(ref(a, slots_total * row, &kc));
  TM_RETURN_IF_ERROR(ref(a + 4, slots_total * row, &vc));
  TM_RETURN_IF_ERROR(ref(a + 8, T * row, &k));
  TM_RETURN_IF_ERROR(ref(a + 12, T * row, &v));
  TM_RETURN_IF_ERROR(ref(a + 16, T, &sl));
  const DType kd = kc.dtype;
  TM_CHECK_ARG(kv_dtype_ok(kd) && vc.dtype == kd, "kvWrite: cache dtypes must match and be f32, f16 or bf16");
  const int32_t* s = reinterpret_cast<const int32_t*>(sl.ptr);
  for (int64_t t = 0; t < T; t++)
    TM_CHECK_RANGE(s[t] < slots_total, "kvWrite: slot %d at row %lld is outside [0, %lld)", s[t],
                   static_cast<long long>(t), static_cast<long long>(slots_total));
  const int64_t cb = row * dtype_bytes(kd);
  const float* kp = reinterpret_cast<const float*>(k.ptr);
  const float* vp = reinterpret_cast<const float*>(v.ptr);
  for (int64_t t = 0; t < T; t++) {
    if (s[t] < 0) continue;
    store_kv(kc.ptr + s[t] * cb, kd, kp + t * row, row);
    store_kv(vc.ptr + s[t] * cb, kd, vp + t * row, row);
  }
  return Status::Ok();
}

Status CpuEngine::op_attention(const int32_t* a) {
  const int64_t T = a[28], S = a[29], MB = a[30], H = a[31], Hkv = a[32], Dh = a[33], bs = a[34], NB = a[35];
  const float scale = as_f32(a[36]);
  const int64_t window = a[37];
  TM_CHECK_ARG(H > 0 && Hkv > 0 && H % Hkv == 0 && Dh > 0 && Dh <= 512 && bs > 0,
               "attention: bad heads/dims (H %lld, Hkv %lld, Dh %lld, blockSize %lld)", static_cast<long long>(H),
               static_cast<long long>(Hkv), static_cast<long long>(Dh), static_cast<long long>(bs));
  Ref out, q, kc, vc, qsl, sl, bt;
  TM_RETURN_IF_ERROR(ref(a, T * H * Dh, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, T * H * Dh, &q));
  TM_RETURN_IF_ERROR(ref(a + 8, NB * bs * Hkv * Dh, &kc));
  TM_RETURN_IF_ERROR(ref(a + 12, NB * bs * Hkv * Dh, &vc));
  TM_RETURN_IF_ERROR(ref(a + 16, S + 1, &qsl));
  TM_RETURN_IF_ERROR(ref(a + 20, S, &sl));
  TM_RETURN_IF_ERROR(ref(a + 24, S * MB, &bt));
  TM_CHECK_ARG(kv_dtype_ok(kc.dtype) && vc.dtype == kc.dtype, "attention: cache dtypes must match and be f32, f16 or bf16");
  const int32_t* qs = reinterpret_cast<const int32_t*>(qsl.ptr);
  const int32_t* lens = reinterpret_cast<const int32_t*>(sl.ptr);
  const int32_t* tables = reinterpret_cast<const int32_t*>(bt.ptr);
  TM_CHECK_ARG(qs[0] == 0 && qs[S] == T, "attention: queryStartLoc must run from 0 to numTokens %lld",
               static_cast<long long>(T));
  constexpr int64_t kQB = 16;
  // Heads per decode task: all of them (<= 16), halved while there would be fewer tasks than threads.
  // A group reads its heads' slice of each key row front to back with prefetch (query_heads); one
  // head per task reads Dh values of every row, scattered, and was latency bound: batch 1 on 2
  // threads, stories110M q8_0 at ~150 keys, 1.7 ms of attention per step with 12 one-head tasks.
  int64_t num_decode = 0;
  for (int64_t s = 0; s < S; s++) num_decode += qs[s + 1] - qs[s] == 1;
  const int64_t threads = pool_.num_threads();
  int64_t decode_heads = H < 16 ? H : 16;
  while (threads > 1 && decode_heads > 1 && num_decode * ceil_div(H, decode_heads) < threads)
    decode_heads = ceil_div(decode_heads, 2);
  attn_tasks_.clear();
  int64_t work = 0;
  for (int64_t s = 0; s < S; s++) {
    const int64_t qlen = qs[s + 1] - qs[s], ctx = lens[s];
    TM_CHECK_ARG(qlen >= 0 && qlen <= ctx && ctx <= MB * bs,
                 "attention: seq %lld has qLen %lld, seqLen %lld (capacity %lld)", static_cast<long long>(s),
                 static_cast<long long>(qlen), static_cast<long long>(ctx), static_cast<long long>(MB * bs));
    if (qlen == 0) continue;
    int64_t first = 0;
    if (window > 0 && ctx - qlen - window + 1 > 0) first = ctx - qlen - window + 1;
    for (int64_t b = first / bs; b < ceil_div(ctx, bs); b++) {
      const int32_t id = tables[s * MB + b];
      TM_CHECK_RANGE(id >= 0 && id < NB, "attention: seq %lld block %lld has id %d outside [0, %lld)",
                     static_cast<long long>(s), static_cast<long long>(b), id, static_cast<long long>(NB));
    }
    if (qlen == 1) {  // decode: groups of heads share each pass over the key rows
      for (int64_t h = 0; h < H; h += decode_heads)
        attn_tasks_.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), 0, 1,
                               static_cast<int32_t>(h + decode_heads < H ? h + decode_heads : H)});
    } else {
      for (int64_t h = 0; h < H; h++)
        for (int64_t q0 = 0; q0 < qlen; q0 += kQB)
          attn_tasks_.push_back({static_cast<int32_t>(s), static_cast<int32_t>(h), static_cast<int32_t>(q0),
                                 static_cast<int32_t>(q0 + kQB < qlen ? q0 + kQB : qlen), static_cast<int32_t>(h + 1)});
    }
    work += qlen * (window > 0 && window < ctx ? window : ctx) * H * Dh;
  }
  AttentionArgs args{reinterpret_cast<float*>(out.ptr), reinterpret_cast<const float*>(q.ptr),
                     kc.ptr, vc.ptr, qs, lens, tables, S, MB, H, Hkv, Dh, bs, NB, scale, window, kc.dtype};
  const int64_t n = static_cast<int64_t>(attn_tasks_.size());
  const AttentionTask* tasks = attn_tasks_.data();
  const KernelTable* k = kernels_;
  pool_.parallel_for(n, work < kParallelMinWork ? n : 1, [&](int64_t t0, int64_t t1) { k->attention(args, tasks, t0, t1); }, work);
  return Status::Ok();
}

}}  // namespace tmill::cpu
