// The CUDA addon context shared by its glue files: argument helpers, host-side dtype conversion,
// CUDA-error -> JS-error mapping, and the Ctx object (device, stream, block cache, pinned buffers,
// graphs). Members are defined in cuda_addon.cpp (memory, reads, module init), cuda_addon_ops.cpp
// (kernel launches), cuda_addon_graphs.cpp (graph capture and replay) and cuda_addon_mask.cpp
// (grammar bitmask upload + apply).
#pragma once
#include <napi.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <string.h>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>
#include "../cuda/tm_cuda.h"

namespace tmcuda {

inline void* P(const Napi::Value& v) { return (void*)(uintptr_t)v.As<Napi::Number>().Int64Value(); }
inline int I(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
inline long long L(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
inline double D(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }

[[noreturn]] inline void throwCuda(Napi::Env env, const char* op, cudaError_t e) {
  std::string msg = std::string(e == cudaErrorMemoryAllocation ? "out_of_memory: " : "cuda_error: ") + op + ": " +
                    cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  throw Napi::Error::New(env, msg);
}
#define CK(env, op, expr)                       \
  do {                                          \
    cudaError_t e_ = (expr);                    \
    if (e_ != cudaSuccess) throwCuda(env, op, e_); \
  } while (0)

inline size_t dtBytes(int dt) { return dt == TM_I8 ? 1 : dt == TM_F16 || dt == TM_BF16 ? 2 : 4; }

inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline uint16_t f32ToF16(float f) {
  __half h = __float2half_rn(f);  // host-callable in cuda_fp16.h
  uint16_t b;
  memcpy(&b, &h, 2);
  return b;
}
inline float bf16ToF32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline float f16ToF32(uint16_t b) {
  __half h;
  memcpy(&h, &b, 2);
  return __half2float(h);
}

class Ctx : public Napi::ObjectWrap<Ctx> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Ctx(const Napi::CallbackInfo& info);
  ~Ctx() override { release(); }

  int device = 0;
  cudaStream_t stream = nullptr;
  void* lt = nullptr;
  void* ltWs = nullptr;
  size_t ltWsBytes = 0;
  void* attnWs = nullptr;
  size_t attnWsBytes = 0;
  int numSms = 0;
  bool disposed = false;
  std::multimap<size_t, void*> cache;  // free blocks by rounded size
  std::map<void*, size_t> live;         // live blocks -> rounded size
  size_t cachedBytes = 0;
  std::mutex pinMu;
  std::multimap<size_t, void*> pinned;  // free pinned host buffers by capacity

  void* pinAcquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> g(pinMu);
      auto it = pinned.lower_bound(bytes);
      if (it != pinned.end()) { void* p = it->second; pinned.erase(it); return p; }
    }
    void* p = nullptr;
    size_t cap = bytes < 4096 ? 4096 : bytes;
    if (cudaMallocHost(&p, cap) != cudaSuccess) return nullptr;
    std::lock_guard<std::mutex> g(pinMu);
    pinCap[p] = cap;
    return p;
  }
  void pinRelease(void* p) {
    std::lock_guard<std::mutex> g(pinMu);
    pinned.emplace(pinCap[p], p);
  }
  std::map<void*, size_t> pinCap;
  // Grammar bitmasks (cuda_addon_mask.cpp): one pinned staging buffer and one device buffer, both
  // grown on demand; maskEv marks the end of the last H2D copy out of maskPin.
  void* maskPin = nullptr;
  size_t maskPinBytes = 0;
  void* maskDev = nullptr;
  size_t maskDevBytes = 0;
  cudaEvent_t maskEv = nullptr;
  bool maskEvPending = false;
  // Quantized activations of the ggml matmul (cuda_addon_ggml.cpp): grown on demand, never while capturing.
  void* ggmlWs = nullptr;
  size_t ggmlWsBytes = 0;
  bool capturing = false;
  int nextGraphId = 1;
  std::map<int, cudaGraphExec_t> graphs;  // id -> instantiated graph

  void abortCapture() {
    if (!capturing) return;
    capturing = false;
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream, &g);  // fails when the capture was invalidated; either way it ends
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
  }
  void destroyGraphs() {
    for (auto& kv : graphs) cudaGraphExecDestroy(kv.second);
    graphs.clear();
  }

  void release() {
    if (disposed) return;
    disposed = true;
    cudaSetDevice(device);
    abortCapture();
    destroyGraphs();
    if (stream) cudaStreamSynchronize(stream);
    for (auto& kv : live) cudaFree(kv.first);
    for (auto& kv : cache) cudaFree(kv.second);
    live.clear(); cache.clear(); cachedBytes = 0;
    if (lt) tm_cublaslt_destroy(lt);
    lt = nullptr;
    if (ltWs) cudaFree(ltWs);
    if (attnWs) cudaFree(attnWs);
    ltWs = attnWs = nullptr;
    if (maskEv) cudaEventDestroy(maskEv);
    if (maskPin) cudaFreeHost(maskPin);
    if (maskDev) cudaFree(maskDev);
    if (ggmlWs) cudaFree(ggmlWs);
    ggmlWs = nullptr; ggmlWsBytes = 0;
    maskEv = nullptr; maskPin = maskDev = nullptr; maskPinBytes = maskDevBytes = 0; maskEvPending = false;
    for (auto& kv : pinCap) cudaFreeHost(kv.first);
    pinCap.clear(); pinned.clear();
    if (stream) cudaStreamDestroy(stream);
    stream = nullptr;
  }

  void check(Napi::Env env) { if (disposed) throw Napi::Error::New(env, "cuda_error: backend disposed"); }
  // Memory traffic and synchronisation would invalidate (or be silently left out of) a capture.
  void noCapture(Napi::Env env, const char* op) {
    if (capturing) throw Napi::Error::New(env, std::string("cuda_error: graph_capture: ") + op + " is not allowed while capturing a graph");
  }

  Napi::Value Malloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Trim(const Napi::CallbackInfo& info);
  Napi::Value MemInfo(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Synchronize(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Gather(const Napi::CallbackInfo& info);
  Napi::Value Convert(const Napi::CallbackInfo& info);
  Napi::Value Rmsnorm(const Napi::CallbackInfo& info);
  Napi::Value AddRmsnorm(const Napi::CallbackInfo& info);
  Napi::Value Rope(const Napi::CallbackInfo& info);
  Napi::Value KvWrite(const Napi::CallbackInfo& info);
  Napi::Value RopeKvWriteQkv(const Napi::CallbackInfo& info);
  Napi::Value Attention(const Napi::CallbackInfo& info);
  Napi::Value SiluMul(const Napi::CallbackInfo& info);
  Napi::Value Matmul(const Napi::CallbackInfo& info);
  Napi::Value MatmulQ8(const Napi::CallbackInfo& info);
  Napi::Value DequantQ8(const Napi::CallbackInfo& info);
  Napi::Value MatmulGgml(const Napi::CallbackInfo& info);
  Napi::Value EmbeddingGgml(const Napi::CallbackInfo& info);
  Napi::Value Argmax(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value ApplyTokenBitmask(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value GraphBegin(const Napi::CallbackInfo& info);
  Napi::Value GraphEnd(const Napi::CallbackInfo& info);
  Napi::Value GraphAbort(const Napi::CallbackInfo& info);
  Napi::Value GraphLaunch(const Napi::CallbackInfo& info);
  Napi::Value GraphDestroy(const Napi::CallbackInfo& info);
};

}  // namespace tmcuda
