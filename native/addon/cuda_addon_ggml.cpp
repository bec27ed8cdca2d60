// N-API glue for the ggml block-weight kernels (native/cuda/gemm_ggml.cu): the activation scratch
// lives in the context (grown here outside graph capture, reused by every matmul on the stream).
#include "cuda_ctx.h"

namespace tmcuda {

// At least this much on first use, so that decode graphs captured before any prefill rarely find it short.
static const size_t kGgmlWsMin = 8u << 20;

// matmulGgml(out, dtOut, x, dtX, w, type, rowBytes, bias|0, dtBias, T, N, K) -> 'gemv_ggml' | 'batched_ggml'.
Napi::Value Ctx::MatmulGgml(const Napi::CallbackInfo& i) {
  Napi::Env env = i.Env();
  check(env);
  const int T = I(i[9]), N = I(i[10]), K = I(i[11]);
  const size_t need = ggml_act_scratch_bytes(T, K);
  if (need > ggmlWsBytes) {
    if (capturing)
      throw Napi::Error::New(env, "cuda_error: graph_capture: matmulGgml needs a larger activation scratch; "
                                  "run the shape once before capturing");
    cudaSetDevice(device);
    if (ggmlWs) {
      cudaStreamSynchronize(stream);  // the old buffer may still be read by queued kernels
      cudaFree(ggmlWs);
      ggmlWs = nullptr;
      ggmlWsBytes = 0;
    }
    const size_t bytes = need < kGgmlWsMin ? kGgmlWsMin : need;
    cudaError_t e = cudaMalloc(&ggmlWs, bytes);
    if (e != cudaSuccess) { cudaGetLastError(); ggmlWs = nullptr; throwCuda(env, "matmulGgml scratch", e); }
    ggmlWsBytes = bytes;
  }
  CK(env, "matmulGgml",
     launch_matmul_ggml(P(i[0]), I(i[1]), P(i[2]), I(i[3]), (const uint8_t*)P(i[4]), I(i[5]), L(i[6]), P(i[7]), I(i[8]), T, N, K,
                        ggmlWs, ggmlWsBytes, stream));
  return Napi::String::New(env, T <= gemv_ggml_max_tokens() ? "gemv_ggml" : "batched_ggml");
}

// embeddingGgml(out, dtOut, w, type, rowBytes, ids, T, V, K)
Napi::Value Ctx::EmbeddingGgml(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "embeddingGgml",
     launch_embedding_ggml(P(i[0]), I(i[1]), (const uint8_t*)P(i[2]), I(i[3]), L(i[4]), (const int32_t*)P(i[5]), I(i[6]), I(i[7]),
                           I(i[8]), stream));
  return i.Env().Undefined();
}

}  // namespace tmcuda
