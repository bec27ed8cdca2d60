// N-API glue for the CUDA kernel launchers: unpack arguments, launch on the context's stream,
// turn a CUDA error into a JS error. Shapes and semantics: src/runtime/backend.ts and native/cuda.
#include "cuda_ctx.h"

namespace tmcuda {


// gather(out, dtOut, src, dtSrc, idx, numRows, numSrcRows, cols)
Napi::Value Ctx::Gather(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "gatherRows", launch_gather_rows(P(i[0]), I(i[1]), P(i[2]), I(i[3]), (const int32_t*)P(i[4]), I(i[5]), I(i[6]), I(i[7]), stream));
  return i.Env().Undefined();
}
// convert(out, dtOut, src, dtSrc, n)
Napi::Value Ctx::Convert(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "convert", launch_convert(P(i[0]), I(i[1]), P(i[2]), I(i[3]), (size_t)L(i[4]), stream));
  return i.Env().Undefined();
}
// rmsnorm(out, x, w, dt, dtW, rows, cols, eps)
Napi::Value Ctx::Rmsnorm(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "rmsnorm", launch_rmsnorm(P(i[0]), P(i[1]), P(i[2]), I(i[3]), I(i[4]), I(i[5]), I(i[6]), (float)D(i[7]), stream));
  return i.Env().Undefined();
}
// addRmsnorm(out, residual, x, w, dt, dtW, rows, cols, eps)
Napi::Value Ctx::AddRmsnorm(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "addRmsnorm", launch_add_rmsnorm(P(i[0]), P(i[1]), P(i[2]), P(i[3]), I(i[4]), I(i[5]), I(i[6]), I(i[7]), (float)D(i[8]), stream));
  return i.Env().Undefined();
}
// rope(q, k, dt, positions, invFreq, T, H, Hkv, Dh)
Napi::Value Ctx::Rope(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "rope", launch_rope(P(i[0]), P(i[1]), I(i[2]), (const int32_t*)P(i[3]), (const float*)P(i[4]), I(i[5]), I(i[6]), I(i[7]), I(i[8]), stream));
  return i.Env().Undefined();
}
// kvWrite(kc, vc, k, v, dt, slots, T, rowElems, numSlots)
Napi::Value Ctx::KvWrite(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "kvWrite", launch_kv_write(P(i[0]), P(i[1]), P(i[2]), P(i[3]), I(i[4]), (const int32_t*)P(i[5]), I(i[6]), I(i[7]), L(i[8]), stream));
  return i.Env().Undefined();
}
// ropeKvWriteQkv(qOut, qkv, kc, vc, dt, positions, invFreq, slots, T, H, Hkv, Dh, numSlots)
Napi::Value Ctx::RopeKvWriteQkv(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "ropeKvWriteQkv", launch_qkv_rope_kv(P(i[0]), P(i[1]), P(i[2]), P(i[3]), I(i[4]), (const int32_t*)P(i[5]), (const float*)P(i[6]),
                                                   (const int32_t*)P(i[7]), I(i[8]), I(i[9]), I(i[10]), I(i[11]), L(i[12]), stream));
  return i.Env().Undefined();
}
// attention(out, q, kc, vc, qsl, seqLens, blockTables, dt, T, S, H, Hkv, Dh, blockSize, maxBlocksPerSeq,
//           maxQueryLen, maxSeqLen, slidingWindow, numCacheBlocks, scale[, dynamicSplits])
Napi::Value Ctx::Attention(const Napi::CallbackInfo& i) {
  check(i.Env());
  TmAttnArgs a;
  a.out = P(i[0]); a.q = P(i[1]); a.kCache = P(i[2]); a.vCache = P(i[3]);
  a.queryStartLoc = (const int32_t*)P(i[4]); a.seqLens = (const int32_t*)P(i[5]); a.blockTables = (const int32_t*)P(i[6]);
  a.dt = I(i[7]); a.numTokens = I(i[8]); a.numSeqs = I(i[9]); a.numHeads = I(i[10]); a.numKvHeads = I(i[11]);
  a.headDim = I(i[12]); a.blockSize = I(i[13]); a.maxBlocksPerSeq = I(i[14]); a.maxQueryLen = I(i[15]);
  a.maxSeqLen = I(i[16]); a.slidingWindow = I(i[17]); a.numCacheBlocks = L(i[18]); a.scale = (float)D(i[19]);
  a.workspace = (float*)attnWs; a.workspaceBytes = attnWsBytes; a.numSms = numSms;
  a.dynamicSplits = i.Length() > 20 ? I(i[20]) : 0;
  CK(i.Env(), "attention", launch_attention(&a, stream));
  return i.Env().Undefined();
}
// siluMul(out, gateUp, dt, rows, inter)
Napi::Value Ctx::SiluMul(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "siluMul", launch_silu_mul(P(i[0]), P(i[1]), I(i[2]), I(i[3]), I(i[4]), stream));
  return i.Env().Undefined();
}
// matmul(out, dtOut, x, dtX, w, dtW, bias|0, dtBias, T, N, K, mode) mode: 0 auto, 1 own only, 2 cuBLASLt only.
// Returns which path ran: 'gemv' | 'tiled' | 'cublaslt'.
Napi::Value Ctx::Matmul(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  check(env);
  void* out = P(i[0]);
  const int dtOut = I(i[1]), dtX = I(i[3]), dtW = I(i[5]), dtBias = I(i[7]);
  const void* x = P(i[2]);
  const void* w = P(i[4]);
  const void* bias = P(i[6]);
  const int T = I(i[8]), N = I(i[9]), K = I(i[10]), mode = I(i[11]);
  // cuBLASLt wants 16-byte aligned operands and leading dimensions.
  const bool aligned = (((uintptr_t)out | (uintptr_t)x | (uintptr_t)w) % 16 == 0) && ((size_t)K * dtBytes(dtX)) % 16 == 0 &&
                       ((size_t)N * dtBytes(dtOut)) % 16 == 0;
  // Auto: our GEMV up to 4 tokens (measured faster on H100 at 7B shapes), cuBLASLt above.
  const bool ltOk = lt && dtX == dtW && aligned && mode != 1 && (T > 4 || mode == 2);
  if (ltOk) {
    int st = tm_cublaslt_matmul(lt, out, dtOut, x, w, dtX, T, N, K, ltWs, ltWsBytes, stream);
    if (st == 0) {
      if (bias) CK(env, "matmul bias", launch_add_bias(out, dtOut, bias, dtBias, T, N, stream));
      return Napi::String::New(env, "cublaslt");
    }
    if (mode == 2) throw Napi::Error::New(env, "cuda_error: cuBLASLt matmul failed with status " + std::to_string(st));
  }
  CK(env, "matmul", launch_matmul_own(out, dtOut, x, dtX, w, dtW, bias, dtBias, T, N, K, stream));
  const bool vec = K % 8 == 0 && ((uintptr_t)x % 16 == 0) && ((uintptr_t)w % 16 == 0) && ((size_t)K * dtBytes(dtX)) % 16 == 0 &&
                   ((size_t)K * dtBytes(dtW)) % 16 == 0;
  return Napi::String::New(env, T <= gemv_max_tokens() && vec ? "gemv" : "tiled");
}
// matmulQ8(out, dtOut, x, dtX, wq, scales, bias|0, dtBias, T, N, K) -> 'gemv_q8' | 'tiled_q8' (gemm_q8.cu).
Napi::Value Ctx::MatmulQ8(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  check(env);
  const int dtX = I(i[3]), T = I(i[8]), N = I(i[9]), K = I(i[10]);
  const void* x = P(i[2]);
  const int8_t* wq = (const int8_t*)P(i[4]);
  CK(env, "matmulQ8", launch_matmul_q8(P(i[0]), I(i[1]), x, dtX, wq, (const float*)P(i[5]), P(i[6]), I(i[7]), T, N, K, stream));
  const bool vec = K % 16 == 0 && ((uintptr_t)x % 16 == 0) && ((uintptr_t)wq % 16 == 0) && ((size_t)K * dtBytes(dtX)) % 16 == 0;
  return Napi::String::New(env, T <= gemv_q8_max_tokens() && vec ? "gemv_q8" : "tiled_q8");
}
// dequantQ8(out, dtOut, wq, scales, N, K): out[n, k] = wq[n, k] * scales[n] in dtOut.
Napi::Value Ctx::DequantQ8(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "dequantQ8", launch_dequant_q8(P(i[0]), I(i[1]), (const int8_t*)P(i[2]), (const float*)P(i[3]), I(i[4]), I(i[5]), stream));
  return i.Env().Undefined();
}
// argmax(out, logits, rows, vocab)
Napi::Value Ctx::Argmax(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "argmax", launch_argmax((int32_t*)P(i[0]), (const float*)P(i[1]), I(i[2]), I(i[3]), stream));
  return i.Env().Undefined();
}
// sample(out, logits, scratch, counts, params, seeds, history, numGenerated, historyLens, rows, vocab, maxHistory)
Napi::Value Ctx::Sample(const Napi::CallbackInfo& i) {
  check(i.Env());
  TmSampleArgs a;
  a.out = (int32_t*)P(i[0]); a.logits = (const float*)P(i[1]); a.scratch = (float*)P(i[2]); a.counts = (int32_t*)P(i[3]);
  a.params = (const float*)P(i[4]); a.seeds = (const uint32_t*)P(i[5]); a.history = (const int32_t*)P(i[6]);
  a.numGenerated = (const int32_t*)P(i[7]); a.historyLens = (const int32_t*)P(i[8]);
  a.rows = I(i[9]); a.vocab = I(i[10]); a.maxHistory = I(i[11]);
  CK(i.Env(), "sample", launch_sample(&a, stream));
  return i.Env().Undefined();
}

}  // namespace tmcuda
