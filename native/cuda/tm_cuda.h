// The C surface of the CUDA kernels: every launcher the N-API glue may call. Launchers only
// enqueue on the given stream and return a cudaError_t (never exit/abort); shapes are checked by
// the caller (src/runtime/cuda) and again here where a bad value would fault the device.
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

// Element types (same order as the addon's dtype codes).
enum TmDType { TM_F32 = 0, TM_F16 = 1, TM_BF16 = 2, TM_I32 = 3, TM_I8 = 4 };

#ifdef __cplusplus
extern "C" {
#endif

// gather.cu ------------------------------------------------------------------------------------
// out[r, :] = src[idx[r], :] with dtype conversion; rows whose index is out of [0, numSrcRows) are zeroed.
cudaError_t launch_gather_rows(void* out, int dtOut, const void* src, int dtSrc, const int32_t* idx,
                               int numRows, int numSrcRows, int cols, cudaStream_t s);
// out[i] = convert(src[i]) for n elements.
cudaError_t launch_convert(void* out, int dtOut, const void* src, int dtSrc, size_t n, cudaStream_t s);

// rmsnorm.cu -----------------------------------------------------------------------------------
cudaError_t launch_rmsnorm(void* out, const void* x, const void* w, int dt, int dtW, int rows, int cols,
                           float eps, cudaStream_t s);
cudaError_t launch_add_rmsnorm(void* out, void* residual, const void* x, const void* w, int dt, int dtW,
                               int rows, int cols, float eps, cudaStream_t s);

// rope.cu --------------------------------------------------------------------------------------
cudaError_t launch_rope(void* q, void* k, int dt, const int32_t* positions, const float* invFreq,
                        int numTokens, int numHeads, int numKvHeads, int headDim, cudaStream_t s);

// kv_write.cu ----------------------------------------------------------------------------------
cudaError_t launch_kv_write(void* kCache, void* vCache, const void* k, const void* v, int dt,
                            const int32_t* slotMapping, int numTokens, int rowElems, long long numSlots,
                            cudaStream_t s);

// qkv_rope_kv.cu -------------------------------------------------------------------------------
// Split interleaved qkv [T, (H + 2 Hkv) * Dh], rope q and k, q -> qOut [T, H, Dh], k/v -> cache slots.
cudaError_t launch_qkv_rope_kv(void* qOut, const void* qkv, void* kCache, void* vCache, int dt, const int32_t* positions,
                               const float* invFreq, const int32_t* slotMapping, int numTokens, int numHeads,
                               int numKvHeads, int headDim, long long numSlots, cudaStream_t s);

// attention.cu ---------------------------------------------------------------------------------
struct TmAttnArgs {
  void* out;                 // [T, H, Dh]
  const void* q;             // [T, H, Dh]
  const void* kCache;        // [numBlocks, blockSize, Hkv, Dh]
  const void* vCache;
  const int32_t* queryStartLoc;  // [S + 1]
  const int32_t* seqLens;        // [S]
  const int32_t* blockTables;    // [S, maxBlocksPerSeq]
  int dt, numTokens, numSeqs, numHeads, numKvHeads, headDim, blockSize, maxBlocksPerSeq;
  int maxQueryLen, maxSeqLen, slidingWindow;
  long long numCacheBlocks;
  float scale;
  float* workspace;          // split-K partials (may be null when workspaceBytes == 0)
  size_t workspaceBytes;
  int numSms;
  // 1: split the keys of each sequence on the device into numSplits equal parts of its own length
  // (graph capture: the split count comes from the host's maxSeqLen upper bound, the work from the
  // actual seqLens). 0: fixed chunks of the host's maxSeqLen (eager default).
  int dynamicSplits;
};
// Bytes of workspace the split path wants for these arguments (0: no split).
size_t attention_workspace_bytes(const TmAttnArgs* a);
cudaError_t launch_attention(const TmAttnArgs* a, cudaStream_t s);

// elementwise.cu -------------------------------------------------------------------------------
cudaError_t launch_silu_mul(void* out, const void* gateUp, int dt, int rows, int inter, cudaStream_t s);
// out[r, c] += bias[c] (out in dtOut, bias any float dtype).
cudaError_t launch_add_bias(void* out, int dtOut, const void* bias, int dtBias, int rows, int cols, cudaStream_t s);

// gemm.cu --------------------------------------------------------------------------------------
// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]); f32 accumulation. GEMV path for T <= 8, tiled otherwise.
cudaError_t launch_matmul_own(void* out, int dtOut, const void* x, int dtX, const void* w, int dtW,
                              const void* bias, int dtBias, int T, int N, int K, cudaStream_t s);
int gemv_max_tokens(void);

// gemm_q8.cu -----------------------------------------------------------------------------------
// Weight-only int8: out[T, N] = scales[N] * (x[T, K] . wq[N, K]^T) (+ bias[N]); f32 accumulation.
// GEMV (int8 dequantized in registers) for T <= gemv_q8_max_tokens(), tiled otherwise.
cudaError_t launch_matmul_q8(void* out, int dtOut, const void* x, int dtX, const int8_t* wq, const float* scales,
                             const void* bias, int dtBias, int T, int N, int K, cudaStream_t s);
int gemv_q8_max_tokens(void);
// out[n, k] = wq[n, k] * scales[n] in dtOut (for a cuBLASLt matmul over the dequantized weight).
cudaError_t launch_dequant_q8(void* out, int dtOut, const int8_t* wq, const float* scales, int N, int K, cudaStream_t s);

// gemm_ggml.cu ---------------------------------------------------------------------------------
// ggml block weights (type = the ggml type id: 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0, 12 Q4_K, 13 Q5_K,
// 14 Q6_K): out[T, N] = x[T, K] . dequant(w)^T (+ bias[N]) with x quantized per 32 as the spec
// (src/runtime/reference/ops-ggml.ts); w [N, rowBytes] raw blocks. scratch: ggml_act_scratch_bytes(T, K)
// bytes, 16-byte aligned, for the quantized activations. GEMV for T <= gemv_ggml_max_tokens(), the same
// kernel over token tiles of 16 otherwise (batch invariant). cudaErrorInvalidValue on a bad shape/type.
cudaError_t launch_matmul_ggml(void* out, int dtOut, const void* x, int dtX, const uint8_t* w, int type, long long rowBytes,
                               const void* bias, int dtBias, int T, int N, int K, void* scratch, size_t scratchBytes,
                               cudaStream_t s);
size_t ggml_act_scratch_bytes(int T, int K);
int gemv_ggml_max_tokens(void);
// out[t, :] = row ids[t] of w decoded exactly (ggml-dequant.ts) in dtOut; out-of-range ids give zeros.
cudaError_t launch_embedding_ggml(void* out, int dtOut, const uint8_t* w, int type, long long rowBytes, const int32_t* ids,
                                  int T, int V, int K, cudaStream_t s);

// cublaslt.cpp ---------------------------------------------------------------------------------
// Loads libcublasLt at run time; returns 1 when usable. Safe to call repeatedly.
int tm_cublaslt_load(const char* explicitPath, char* whyNot, size_t whyNotLen);
// Creates a handle (+ workspace owned by the caller). Returns 0 on success.
int tm_cublaslt_create(void** handle);
void tm_cublaslt_destroy(void* handle);
// out[T,N] = x[T,K] . w[N,K]^T with x,w in dtIn and out in dtOut. Returns 0 on success, a cuBLAS
// status otherwise (the caller falls back to launch_matmul_own).
int tm_cublaslt_matmul(void* handle, void* out, int dtOut, const void* x, const void* w, int dtIn,
                       int T, int N, int K, void* workspace, size_t workspaceBytes, cudaStream_t s);

// sample.cu ------------------------------------------------------------------------------------
cudaError_t launch_argmax(int32_t* out, const float* logits, int rows, int vocab, cudaStream_t s);
struct TmSampleArgs {
  int32_t* out;              // [S]
  const float* logits;       // [S, V] (not modified)
  float* scratch;            // [S, V] f32 working copy
  int32_t* counts;           // [S, V] i32 token counts (zeroed by the kernel)
  const float* params;       // [S, 8]: temperature, topK, topP, minP, repetition, presence, frequency, unused
  const uint32_t* seeds;     // [S, 2]: seed lo/hi mixed with the step counter
  const int32_t* history;    // [S, maxHistory] token ids seen (prompt + output), -1 padded
  const int32_t* numGenerated;  // [S]: entries at the end of history that are generated (for presence/frequency)
  const int32_t* historyLens;   // [S]
  int rows, vocab, maxHistory;
};
cudaError_t launch_sample(const TmSampleArgs* a, cudaStream_t s);
// packed i32: [numMasked] row ids into logits [*, vocab], then [numMasked, words] xgrammar bitmasks.
// Clears (to -inf) every logit of those rows whose bit is not set.
cudaError_t launch_apply_token_bitmask(float* logits, const int32_t* packed, int numMasked, int vocab, int words, cudaStream_t s);

#ifdef __cplusplus
}
#endif
