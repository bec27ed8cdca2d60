// N-API glue for the CUDA backend: unpacks arguments, calls the launchers in native/cuda, turns
// CUDA errors into JS errors ("cuda_error: <op>: <CUDA error string>"). Pointers cross to JS as
// numbers (device addresses fit in 53 bits; checked). Reads are async (AsyncWorker waits on an
// event recorded after a D2H copy into pinned memory). Owns: device, one stream, cuBLASLt handle +
// workspace, a size-bucketed cache of device blocks (so steady-state steps never call cudaMalloc),
// and CUDA graphs: graphBegin/graphEnd capture the stream (thread-local mode) into an instantiated
// graph, graphLaunch replays it; memory calls made while capturing are refused ("graph_capture").
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

namespace {

inline void* P(const Napi::Value& v) { return (void*)(uintptr_t)v.As<Napi::Number>().Int64Value(); }
inline int I(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
inline long long L(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
inline double D(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }

[[noreturn]] void throwCuda(Napi::Env env, const char* op, cudaError_t e) {
  std::string msg = std::string(e == cudaErrorMemoryAllocation ? "out_of_memory: " : "cuda_error: ") + op + ": " +
                    cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  throw Napi::Error::New(env, msg);
}
#define CK(env, op, expr)                       \
  do {                                          \
    cudaError_t e_ = (expr);                    \
    if (e_ != cudaSuccess) throwCuda(env, op, e_); \
  } while (0)

size_t dtBytes(int dt) { return dt == TM_I8 ? 1 : dt == TM_F16 || dt == TM_BF16 ? 2 : 4; }

uint16_t f32ToBf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
uint16_t f32ToF16(float f) {
  __half h = __float2half_rn(f);  // host-callable in cuda_fp16.h
  uint16_t b;
  memcpy(&b, &h, 2);
  return b;
}
float bf16ToF32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
float f16ToF32(uint16_t b) {
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
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Matmul(const Napi::CallbackInfo& info);
  Napi::Value MatmulQ8(const Napi::CallbackInfo& info);
  Napi::Value DequantQ8(const Napi::CallbackInfo& info);
  Napi::Value Argmax(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value GraphBegin(const Napi::CallbackInfo& info);
  Napi::Value GraphEnd(const Napi::CallbackInfo& info);
  Napi::Value GraphAbort(const Napi::CallbackInfo& info);
  Napi::Value GraphLaunch(const Napi::CallbackInfo& info);
  Napi::Value GraphDestroy(const Napi::CallbackInfo& info);
};

Ctx::Ctx(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ctx>(info) {
  Napi::Env env = info.Env();
  device = info.Length() > 0 ? I(info[0]) : 0;
  const size_t attnBytes = info.Length() > 1 ? (size_t)L(info[1]) : (size_t)32 << 20;
  CK(env, "cudaSetDevice", cudaSetDevice(device));
  CK(env, "cudaStreamCreate", cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CK(env, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&numSms, cudaDevAttrMultiProcessorCount, device));
  if (attnBytes) CK(env, "cudaMalloc(attention workspace)", cudaMalloc(&attnWs, attnBytes));
  attnWsBytes = attnBytes;
  char why[256];
  const char* path = getenv("TOKENMILL_CUBLASLT");
  if (tm_cublaslt_load(path, why, sizeof why) && tm_cublaslt_create(&lt) == 0) {
    ltWsBytes = (size_t)32 << 20;
    if (cudaMalloc(&ltWs, ltWsBytes) != cudaSuccess) { ltWs = nullptr; ltWsBytes = 0; }
  } else {
    lt = nullptr;
  }
}

Napi::Value Ctx::Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cublasLt", lt != nullptr);
  o.Set("numSms", numSms);
  o.Set("device", device);
  o.Set("cachedBytes", (double)cachedBytes);
  return o;
}

Napi::Value Ctx::Malloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "malloc");
  size_t bytes = (size_t)L(info[0]);
  bytes = ((bytes ? bytes : 1) + 511) & ~(size_t)511;
  void* p = nullptr;
  auto it = cache.find(bytes);
  if (it != cache.end()) {
    p = it->second;
    cache.erase(it);
    cachedBytes -= bytes;
  } else {
    cudaSetDevice(device);
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation && cachedBytes > 0) {
      cudaGetLastError();
      cudaStreamSynchronize(stream);
      for (auto& kv : cache) cudaFree(kv.second);
      cache.clear(); cachedBytes = 0;
      e = cudaMalloc(&p, bytes);
    }
    if (e != cudaSuccess) { cudaGetLastError(); throwCuda(env, "cudaMalloc", e); }
    if ((uintptr_t)p >= ((uintptr_t)1 << 53)) { cudaFree(p); throw Napi::Error::New(env, "cuda_error: device pointer beyond 2^53"); }
  }
  live[p] = bytes;
  return Napi::Number::New(env, (double)(uintptr_t)p);
}

Napi::Value Ctx::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed) return env.Undefined();
  noCapture(env, "free");
  void* p = P(info[0]);
  auto it = live.find(p);
  if (it == live.end()) throw Napi::Error::New(env, "cuda_error: free of an unknown pointer");
  const size_t bytes = it->second;
  live.erase(it);
  if (bytes <= ((size_t)256 << 20)) {  // keep for reuse: work queued on the stream may still use it, which is fine
    cache.emplace(bytes, p);
    cachedBytes += bytes;
  } else {
    cudaStreamSynchronize(stream);
    cudaFree(p);
  }
  return env.Undefined();
}

Napi::Value Ctx::Trim(const Napi::CallbackInfo& info) {
  noCapture(info.Env(), "trim");
  if (!disposed) {
    cudaStreamSynchronize(stream);
    for (auto& kv : cache) cudaFree(kv.second);
    cache.clear(); cachedBytes = 0;
  }
  return info.Env().Undefined();
}

Napi::Value Ctx::MemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t freeB = 0, totalB = 0;
  cudaSetDevice(device);
  CK(env, "cudaMemGetInfo", cudaMemGetInfo(&freeB, &totalB));
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set((uint32_t)0, (double)freeB);
  a.Set((uint32_t)1, (double)totalB);
  return a;
}

// upload(ptr, dtDst, typedArray, dstOffsetElems)
Napi::Value Ctx::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "upload");
  char* dst = (char*)P(info[0]);
  const int dt = I(info[1]);
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  const size_t off = (size_t)L(info[3]);
  const size_t n = ta.ElementLength();
  const void* src = (const char*)ta.ArrayBuffer().Data() + ta.ByteOffset();
  dst += off * dtBytes(dt);
  if (ta.TypedArrayType() == napi_float32_array && dt != TM_F32) {
    std::vector<uint16_t> tmp(n);
    const float* f = (const float*)src;
    if (dt == TM_BF16) for (size_t i = 0; i < n; i++) tmp[i] = f32ToBf16(f[i]);
    else for (size_t i = 0; i < n; i++) tmp[i] = f32ToF16(f[i]);
    CK(env, "upload", cudaMemcpyAsync(dst, tmp.data(), n * 2, cudaMemcpyHostToDevice, stream));
    CK(env, "upload", cudaStreamSynchronize(stream));  // tmp dies here
  } else {
    CK(env, "upload", cudaMemcpyAsync(dst, src, ta.ByteLength(), cudaMemcpyHostToDevice, stream));
  }
  return env.Undefined();
}

class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, Ctx* c, void* pin, cudaEvent_t ev, int dt, size_t n)
      : Napi::AsyncWorker(env), ctx(c), pin(pin), ev(ev), dt(dt), n(n), deferred(Napi::Promise::Deferred::New(env)) {}
  ~ReadWorker() override {
    if (ev) cudaEventDestroy(ev);
    if (pin) ctx->pinRelease(pin);
  }
  Napi::Promise Promise() { return deferred.Promise(); }
  void Execute() override {
    cudaSetDevice(ctx->device);
    cudaError_t e = ev ? cudaEventSynchronize(ev) : cudaSuccess;
    if (e != cudaSuccess) {
      err = std::string("cuda_error: read: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
      return;
    }
    out.resize(n * 4);
    if (dt == TM_BF16 || dt == TM_F16) {
      const uint16_t* h = (const uint16_t*)pin;
      float* f = (float*)out.data();
      for (size_t i = 0; i < n; i++) f[i] = dt == TM_BF16 ? bf16ToF32(h[i]) : f16ToF32(h[i]);
    } else if (n) {
      memcpy(out.data(), pin, n * 4);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!err.empty()) { deferred.Reject(Napi::Error::New(env, err).Value()); return; }
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, n * 4);
    if (n) memcpy(ab.Data(), out.data(), n * 4);
    if (dt == TM_I32) deferred.Resolve(Napi::Int32Array::New(env, n, ab, 0));
    else deferred.Resolve(Napi::Float32Array::New(env, n, ab, 0));
  }
  void OnError(const Napi::Error& e) override { deferred.Reject(e.Value()); }

 private:
  Ctx* ctx;
  void* pin;
  cudaEvent_t ev;
  int dt;
  size_t n;
  std::vector<char> out;
  std::string err;
  Napi::Promise::Deferred deferred;
};

// read(ptr, dt, numel) -> Promise<Float32Array | Int32Array>; numel 0 = synchronize only.
Napi::Value Ctx::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "read");
  const void* src = P(info[0]);
  const int dt = I(info[1]);
  const size_t n = (size_t)L(info[2]);
  void* pin = nullptr;
  if (n) {
    pin = pinAcquire(n * dtBytes(dt));
    if (!pin) throw Napi::Error::New(env, "out_of_memory: cudaMallocHost failed");
    cudaError_t e = cudaMemcpyAsync(pin, src, n * dtBytes(dt), cudaMemcpyDeviceToHost, stream);
    if (e != cudaSuccess) { pinRelease(pin); throwCuda(env, "read", e); }
  }
  cudaEvent_t ev = nullptr;
  CK(env, "cudaEventCreate", cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  CK(env, "cudaEventRecord", cudaEventRecord(ev, stream));
  ReadWorker* w = new ReadWorker(env, this, pin, ev, dt, n);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Ctx::Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  noCapture(env, "synchronize");
  if (info.Length() > 0 && info[0].ToBoolean()) {  // blocking variant
    CK(env, "synchronize", cudaStreamSynchronize(stream));
    return env.Undefined();
  }
  return env.Undefined();
}

Napi::Value Ctx::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

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
// add(out, a, b, dt, n)
Napi::Value Ctx::Add(const Napi::CallbackInfo& i) {
  check(i.Env());
  CK(i.Env(), "add", launch_add(P(i[0]), P(i[1]), P(i[2]), I(i[3]), (size_t)L(i[4]), stream));
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

// ------------------------------------------------------------------------------------ CUDA graphs
// graphBegin(): start capturing this context's stream. Launchers called until graphEnd are recorded,
// not run. Thread-local mode: other threads (async reads) are unaffected; this thread may not call
// unsafe APIs (cudaMalloc, synchronisation), which the glue also refuses up front (noCapture).
Napi::Value Ctx::GraphBegin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "graphBegin");
  cudaSetDevice(device);
  CK(env, "cudaStreamBeginCapture", cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  capturing = true;
  return env.Undefined();
}
// graphEnd() -> id: end the capture and instantiate the graph (ids are never reused).
Napi::Value Ctx::GraphEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (!capturing) throw Napi::Error::New(env, "cuda_error: graph_capture: graphEnd without graphBegin");
  capturing = false;
  cudaGraph_t g = nullptr;
  cudaError_t e = cudaStreamEndCapture(stream, &g);
  if (e != cudaSuccess) {
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throwCuda(env, "graph_capture: cudaStreamEndCapture", e);
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) { cudaGetLastError(); throwCuda(env, "graph_capture: cudaGraphInstantiate", e); }
  const int id = nextGraphId++;
  graphs[id] = exec;
  return Napi::Number::New(env, id);
}
// graphAbort(): end a capture that failed half way and drop it (no-op when not capturing).
Napi::Value Ctx::GraphAbort(const Napi::CallbackInfo& info) {
  if (!disposed) abortCapture();
  return info.Env().Undefined();
}
// graphLaunch(id): enqueue the graph on the stream (stream order with every other op).
Napi::Value Ctx::GraphLaunch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  noCapture(env, "graphLaunch");
  auto it = graphs.find(I(info[0]));
  if (it == graphs.end()) throw Napi::Error::New(env, "cuda_error: graph_launch: unknown graph id " + std::to_string(I(info[0])));
  CK(env, "graph_launch: cudaGraphLaunch", cudaGraphLaunch(it->second, stream));
  return env.Undefined();
}
// graphDestroy(id): drop one graph; id 0 drops all. Work already enqueued keeps running.
Napi::Value Ctx::GraphDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed) return env.Undefined();
  noCapture(env, "graphDestroy");
  const int id = I(info[0]);
  if (id == 0) {
    destroyGraphs();
  } else {
    auto it = graphs.find(id);
    if (it != graphs.end()) { cudaGraphExecDestroy(it->second); graphs.erase(it); }
  }
  return env.Undefined();
}

Napi::Function Ctx::Init(Napi::Env env) {
  return DefineClass(env, "CudaContext",
                     {InstanceMethod("malloc", &Ctx::Malloc), InstanceMethod("free", &Ctx::Free),
                      InstanceMethod("trim", &Ctx::Trim), InstanceMethod("memInfo", &Ctx::MemInfo),
                      InstanceMethod("upload", &Ctx::Upload), InstanceMethod("read", &Ctx::Read),
                      InstanceMethod("synchronize", &Ctx::Synchronize), InstanceMethod("dispose", &Ctx::Dispose),
                      InstanceMethod("gather", &Ctx::Gather), InstanceMethod("convert", &Ctx::Convert),
                      InstanceMethod("rmsnorm", &Ctx::Rmsnorm), InstanceMethod("addRmsnorm", &Ctx::AddRmsnorm),
                      InstanceMethod("rope", &Ctx::Rope), InstanceMethod("kvWrite", &Ctx::KvWrite),
                      InstanceMethod("ropeKvWriteQkv", &Ctx::RopeKvWriteQkv),
                      InstanceMethod("attention", &Ctx::Attention), InstanceMethod("siluMul", &Ctx::SiluMul),
                      InstanceMethod("add", &Ctx::Add), InstanceMethod("matmul", &Ctx::Matmul),
                      InstanceMethod("matmulQ8", &Ctx::MatmulQ8), InstanceMethod("dequantQ8", &Ctx::DequantQ8),
                      InstanceMethod("argmax", &Ctx::Argmax), InstanceMethod("sample", &Ctx::Sample),
                      InstanceMethod("info", &Ctx::Info), InstanceMethod("graphBegin", &Ctx::GraphBegin),
                      InstanceMethod("graphEnd", &Ctx::GraphEnd), InstanceMethod("graphAbort", &Ctx::GraphAbort),
                      InstanceMethod("graphLaunch", &Ctx::GraphLaunch), InstanceMethod("graphDestroy", &Ctx::GraphDestroy)});
}

// probe() -> { ok, reason, devices[], driverVersion, runtimeVersion, cublasLt, cublasLtReason }
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  o.Set("driverVersion", drv);
  o.Set("runtimeVersion", rt);
  char why[256] = "";
  const int lt = tm_cublaslt_load(getenv("TOKENMILL_CUBLASLT"), why, sizeof why);
  o.Set("cublasLt", lt != 0);
  o.Set("cublasLtReason", std::string(why));
  Napi::Array devs = Napi::Array::New(env);
  o.Set("devices", devs);
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    o.Set("ok", false);
    o.Set("reason", std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
    return o;
  }
  for (int d = 0; d < n; d++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) { cudaGetLastError(); continue; }
    size_t freeB = 0, totalB = p.totalGlobalMem;
    cudaSetDevice(d);
    if (cudaMemGetInfo(&freeB, &totalB) != cudaSuccess) cudaGetLastError();
    Napi::Object dv = Napi::Object::New(env);
    dv.Set("name", std::string(p.name));
    dv.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    dv.Set("totalMemoryBytes", (double)totalB);
    dv.Set("freeMemoryBytes", (double)freeB);
    dv.Set("bf16", p.major >= 8);
    dv.Set("numSms", p.multiProcessorCount);
    dv.Set("l2Bytes", p.l2CacheSize);
    devs.Set(devs.Length(), dv);
  }
  o.Set("ok", devs.Length() > 0);
  o.Set("reason", devs.Length() > 0 ? std::string("") : std::string("no CUDA device"));
  return o;
}

}  // namespace

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("CudaContext", Ctx::Init(env));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

NODE_API_MODULE(tokenmill_cuda, InitAll)
