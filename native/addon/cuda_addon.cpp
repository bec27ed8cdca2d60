// N-API glue for the CUDA backend, split by role (this file; cuda_addon_ops.cpp; cuda_addon_graphs.cpp): turns
// CUDA errors into JS errors ("cuda_error: <op>: <CUDA error string>"). Pointers cross to JS as
// numbers (device addresses fit in 53 bits; checked). Reads are async (AsyncWorker waits on an
// event recorded after a D2H copy into pinned memory). Owns: device, one stream, cuBLASLt handle +
// workspace, a size-bucketed cache of device blocks (so steady-state steps never call cudaMalloc),
// and CUDA graphs: graphBegin/graphEnd capture the stream (thread-local mode) into an instantiated
// graph, graphLaunch replays it; memory calls made while capturing are refused ("graph_capture").
// This file: memory (block cache, uploads, async reads), disposal, probe() and module init.
#include "cuda_ctx.h"

namespace tmcuda {


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
  const std::string path = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  if (tm_cublaslt_load(path.c_str(), why, sizeof why) && tm_cublaslt_create(&lt) == 0) {
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
                      InstanceMethod("matmul", &Ctx::Matmul),
                      InstanceMethod("matmulQ8", &Ctx::MatmulQ8), InstanceMethod("dequantQ8", &Ctx::DequantQ8),
                      InstanceMethod("matmulGgml", &Ctx::MatmulGgml), InstanceMethod("embeddingGgml", &Ctx::EmbeddingGgml),
                      InstanceMethod("argmax", &Ctx::Argmax), InstanceMethod("sample", &Ctx::Sample),
                      InstanceMethod("applyTokenBitmask", &Ctx::ApplyTokenBitmask),
                      InstanceMethod("info", &Ctx::Info), InstanceMethod("graphBegin", &Ctx::GraphBegin),
                      InstanceMethod("graphEnd", &Ctx::GraphEnd), InstanceMethod("graphAbort", &Ctx::GraphAbort),
                      InstanceMethod("graphLaunch", &Ctx::GraphLaunch), InstanceMethod("graphDestroy", &Ctx::GraphDestroy)});
}

// probe(cublasLtPath?) -> { ok, reason, devices[], driverVersion, runtimeVersion, cublasLt, cublasLtReason }.
// cublasLtPath ('' = the default search) is tried first; the library loads once per process.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  o.Set("driverVersion", drv);
  o.Set("runtimeVersion", rt);
  char why[256] = "";
  const std::string ltPath = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
  const int lt = tm_cublaslt_load(ltPath.c_str(), why, sizeof why);
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

}  // namespace tmcuda

using namespace tmcuda;

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("CudaContext", Ctx::Init(env));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

NODE_API_MODULE(tokenmill_cuda, InitAll)
