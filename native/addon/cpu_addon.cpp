// node-addon-api glue for the CPU addon (tokenmill_cpu.node): unpacks arguments, owns CpuEngine
// handles, exposes tensor buffers as external ArrayBuffers, and turns a non-ok tmill::Status into a
// JS Error whose `code` is the status name (the TS side maps it to TokenmillError). No kernels here;
// the surface is typed in src/runtime/native.ts (CpuAddon).
#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../common/dtype.h"
#include "../cpu/engine.h"
#include "../cpu/file_map.h"
#include "napi_status.h"
#include "nvml_sampler.h"
#include "cpu_addon_host.h"

using tmill::Status;
using tmill::StatusCode;
using tmill::cpu::CpuEngine;
using tmill::addon::check;
using tmill::addon::need_args;
using tmill::addon::throw_code;
using tmill::addon::throw_status;

namespace {

// The handle JS holds: the engine plus at most one in-flight async flush. Every other addon call
// waits for that flush first (TS does so too), so the engine is never used from two threads.
struct AddonEngine {
  CpuEngine* engine = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool busy = false;
  Status last;  // status of the last async flush, reported once by waitIdle
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return !busy; });
  }
};

AddonEngine* handle_of(const Napi::Value& v) {
  AddonEngine* h = v.IsExternal() ? v.As<Napi::External<AddonEngine>>().Data() : nullptr;
  if (h == nullptr || h->engine == nullptr) throw_code(v.Env(), "invalid_argument", "not a live CPU engine handle (disposed?)");
  return h;
}

CpuEngine* engine_of(const Napi::Value& v) {
  AddonEngine* h = handle_of(v);
  h->wait();
  return h->engine;
}

const int32_t* commands_of(const Napi::Value& arr, const Napi::Value& count, int32_t* n, const char* what) {
  if (!arr.IsTypedArray() || arr.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_code(arr.Env(), "invalid_argument", std::string(what) + ": commands must be an Int32Array");
  Napi::Int32Array a = arr.As<Napi::Int32Array>();
  *n = count.As<Napi::Number>().Int32Value();
  if (*n < 0 || static_cast<size_t>(*n) > a.ElementLength()) throw_code(arr.Env(), "invalid_argument", std::string(what) + ": bad command count");
  return a.Data();
}

// The optional options object of createEngine: {spinUs?: number, poolSolo?: boolean, profile?: boolean,
// hugepages?: boolean}; the first two tune the pool, the others the engine.
tmill::cpu::PoolOptions pool_options_of(const Napi::Value& v) {
  tmill::cpu::PoolOptions o;
  if (!v.IsObject()) return o;
  Napi::Object obj = v.As<Napi::Object>();
  if (obj.Has("spinUs") && obj.Get("spinUs").IsNumber()) o.spin_us = obj.Get("spinUs").As<Napi::Number>().Int64Value();
  if (obj.Has("poolSolo") && obj.Get("poolSolo").IsBoolean()) o.solo_enabled = obj.Get("poolSolo").As<Napi::Boolean>().Value();
  return o;
}

tmill::cpu::EngineOptions engine_options_of(const Napi::Value& v) {
  tmill::cpu::EngineOptions o;
  if (!v.IsObject()) return o;
  Napi::Object obj = v.As<Napi::Object>();
  if (obj.Has("profile") && obj.Get("profile").IsBoolean()) o.profile = obj.Get("profile").As<Napi::Boolean>().Value();
  if (obj.Has("hugepages") && obj.Get("hugepages").IsBoolean()) o.hugepages = obj.Get("hugepages").As<Napi::Boolean>().Value();
  return o;
}

// createEngine(numThreads: number, forceIsa: string, options?: {spinUs?, poolSolo?, profile?, hugepages?}): External
Napi::Value create_engine(const Napi::CallbackInfo& info) {
  need_args(info, 2);
  const int32_t threads = info[0].As<Napi::Number>().Int32Value();
  const std::string isa = info[1].As<Napi::String>().Utf8Value();
  const tmill::cpu::PoolOptions pool = pool_options_of(info[2]);
  const tmill::cpu::EngineOptions opts = engine_options_of(info[2]);
  AddonEngine* h = new (std::nothrow) AddonEngine();
  CpuEngine* e = h == nullptr ? nullptr : new (std::nothrow) CpuEngine(threads, tmill::cpu::select_kernels(isa.c_str()), pool, opts);
  if (e == nullptr) {
    delete h;
    throw_code(info.Env(), "out_of_memory", "cannot create CPU engine");
  }
  h->engine = e;
  return Napi::External<AddonEngine>::New(info.Env(), h, [](Napi::Env, AddonEngine* d) {
    d->wait();
    delete d->engine;
    delete d;
  });
}

// destroyEngine(engine): frees every buffer and joins the pool. The handle must not be used again.
Napi::Value destroy_engine(const Napi::CallbackInfo& info) {
  need_args(info, 1);
  AddonEngine* h = handle_of(info[0]);
  h->wait();
  delete h->engine;
  h->engine = nullptr;  // the AddonEngine itself stays (a pending completion may still touch it)
  return info.Env().Undefined();
}

// engineInfo(engine): { isa, numThreads, allocatedBytes, mappedBytes, opTimeNs?, opCalls? }
Napi::Value engine_info(const Napi::CallbackInfo& info) {
  need_args(info, 1);
  Napi::Env env = info.Env();
  CpuEngine* e = engine_of(info[0]);
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("isa", Napi::String::New(env, e->kernels()->isa));
  obj.Set("numThreads", Napi::Number::New(env, e->num_threads()));
  obj.Set("allocatedBytes", Napi::Number::New(env, static_cast<double>(e->allocated_bytes())));
  obj.Set("mappedBytes", Napi::Number::New(env, static_cast<double>(e->mapped_bytes())));
  if (e->profiling()) {
    Napi::Array ns = Napi::Array::New(env, tmill::cpu::kNumOps), calls = Napi::Array::New(env, tmill::cpu::kNumOps);
    for (uint32_t i = 0; i < static_cast<uint32_t>(tmill::cpu::kNumOps); i++) {
      ns.Set(i, Napi::Number::New(env, static_cast<double>(e->op_time_ns()[i])));
      calls.Set(i, Napi::Number::New(env, static_cast<double>(e->op_calls()[i])));
    }
    obj.Set("opTimeNs", ns);
    obj.Set("opCalls", calls);
  }
  return obj;
}

// [id, ArrayBuffer over ptr]: what alloc and allocMapped return. The engine keeps owning the memory;
// if the ArrayBuffer cannot be made, the buffer is released so nothing leaks.
Napi::Value buffer_result(Napi::Env env, CpuEngine* e, int32_t id, void* ptr, double bytes) {
  Napi::ArrayBuffer ab;
  try {
    ab = Napi::ArrayBuffer::New(env, ptr, static_cast<size_t>(bytes));
  } catch (const Napi::Error&) {
    (void)e->release(id);
    throw_code(env, "invalid_argument", "cannot create an external ArrayBuffer");
  }
  Napi::Array arr = Napi::Array::New(env, 2);
  arr.Set(0u, Napi::Number::New(env, id));
  arr.Set(1u, ab);
  return arr;
}

// alloc(engine, bytes): [id, ArrayBuffer] (64-byte aligned external memory owned by the engine)
Napi::Value alloc(const Napi::CallbackInfo& info) {
  need_args(info, 2);
  Napi::Env env = info.Env();
  CpuEngine* e = engine_of(info[0]);
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  int32_t id = -1;
  void* ptr = nullptr;
  check(env, e->alloc(static_cast<int64_t>(bytes), &id, &ptr));
  return buffer_result(env, e, id, ptr, bytes);
}

// free(engine, id, arrayBuffer): detaches the ArrayBuffer (JS views read as empty) and frees memory.
Napi::Value free_buffer(const Napi::CallbackInfo& info) {
  need_args(info, 3);
  CpuEngine* e = engine_of(info[0]);
  const int32_t id = info[1].As<Napi::Number>().Int32Value();
  if (info[2].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[2].As<Napi::ArrayBuffer>();
    if (!ab.IsDetached()) ab.Detach();
  }
  check(info.Env(), e->release(id));
  return info.Env().Undefined();
}

// flush(engine, commands: Int32Array, numInts): runs the recorded ops in order.
Napi::Value flush(const Napi::CallbackInfo& info) {
  need_args(info, 3);
  CpuEngine* e = engine_of(info[0]);
  int32_t n = 0;
  const int32_t* cmds = commands_of(info[1], info[2], &n, "flush");
  check(info.Env(), e->execute(cmds, n));
  return info.Env().Undefined();
}

// One queued flush on a libuv worker thread (the pool's workers help it). Always resolves: the
// outcome is reported once, by the next waitIdle() (or any other call).
class FlushWorker : public Napi::AsyncWorker {
 public:
  FlushWorker(Napi::Env env, AddonEngine* owner, const int32_t* cmds, int32_t n)
      : Napi::AsyncWorker(env, "tokenmill_cpu_flush"), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner), cmds_(cmds, cmds + n) {}
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override {
    const Status s = owner_->engine->execute(cmds_.data(), static_cast<int64_t>(cmds_.size()));
    std::lock_guard<std::mutex> lk(owner_->mu);
    if (!s.ok()) owner_->last = s;
    owner_->busy = false;
    owner_->cv.notify_all();
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error&) override { deferred_.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred deferred_;
  AddonEngine* owner_;
  std::vector<int32_t> cmds_;
};

// flushAsync(engine, commands: Int32Array, numInts): Promise<void>. Copies the commands and runs
// them on a libuv worker thread (with the engine's pool), leaving the JS thread free.
Napi::Value flush_async(const Napi::CallbackInfo& info) {
  need_args(info, 3);
  engine_of(info[0]);  // waits for an earlier flush
  AddonEngine* h = handle_of(info[0]);
  int32_t n = 0;
  const int32_t* cmds = commands_of(info[1], info[2], &n, "flushAsync");
  FlushWorker* w = new FlushWorker(info.Env(), h, cmds, n);
  Napi::Promise p = w->promise();
  {
    std::lock_guard<std::mutex> lk(h->mu);
    h->busy = true;
  }
  w->Queue();
  return p;
}

// waitIdle(engine): blocks until no async flush is running; throws (once) if the last one failed.
Napi::Value wait_idle(const Napi::CallbackInfo& info) {
  need_args(info, 1);
  AddonEngine* h = handle_of(info[0]);
  h->wait();
  if (!h->last.ok()) {
    const Status s = h->last;
    h->last = Status::Ok();
    throw_status(info.Env(), s);
  }
  return info.Env().Undefined();
}

// convertFromF32(engine, src: Float32Array, id, byteOffset, dtypeCode): writes src into the
// buffer as f16 or bf16 (round to nearest even).
Napi::Value convert_from_f32(const Napi::CallbackInfo& info) {
  need_args(info, 5);
  Napi::Env env = info.Env();
  CpuEngine* e = engine_of(info[0]);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_code(env, "invalid_argument", "convertFromF32: src must be a Float32Array");
  Napi::Float32Array src = info[1].As<Napi::Float32Array>();
  const size_t length = src.ElementLength();
  const int32_t id = info[2].As<Napi::Number>().Int32Value();
  const double off = info[3].As<Napi::Number>().DoubleValue();
  const int32_t dt = info[4].As<Napi::Number>().Int32Value();
  uint16_t* dst = static_cast<uint16_t*>(e->buffer_ptr(id, static_cast<int64_t>(off), static_cast<int64_t>(length) * 2));
  if (dst == nullptr || !e->writable(id) || (dt != 1 && dt != 2)) throw_code(env, "invalid_argument", "convertFromF32: bad destination");
  const float* s = src.Data();
  if (dt == 1) for (size_t i = 0; i < length; i++) dst[i] = tmill::f32_to_f16(s[i]);
  else for (size_t i = 0; i < length; i++) dst[i] = tmill::f32_to_bf16(s[i]);
  return env.Undefined();
}

// ------------------------------------------------------------------ mapped files (file_map.h)
using tmill::cpu::FileMapping;
using MappingRef = std::shared_ptr<FileMapping>;

// The JS handle holds one reference; unmapFile drops it early (the mapping lives on in buffers and views).
MappingRef& mapping_of(const Napi::Value& v) {
  MappingRef* m = v.IsExternal() ? v.As<Napi::External<MappingRef>>().Data() : nullptr;
  if (m == nullptr || *m == nullptr) throw_code(v.Env(), "invalid_argument", "not a live mapped-file handle (unmapped?)");
  return *m;
}

// Byte range arguments: integers with [offset, offset + bytes) inside the mapping.
void range_of(const Napi::CallbackInfo& info, size_t at, const FileMapping& m, int64_t* offset, int64_t* bytes, const char* what) {
  const double o = info[at].As<Napi::Number>().DoubleValue(), n = info[at + 1].As<Napi::Number>().DoubleValue();
  const double limit = 9007199254740991.0;
  if (!(o >= 0 && o <= limit && n >= 0 && n <= limit) || o != static_cast<double>(static_cast<int64_t>(o)) ||
      n != static_cast<double>(static_cast<int64_t>(n)) || !m.contains(static_cast<int64_t>(o), static_cast<int64_t>(n))) {
    throw_code(info.Env(), "out_of_range",
               std::string(what) + ": bytes [" + std::to_string(o) + ", +" + std::to_string(n) + ") lie outside the " +
                   std::to_string(m.size()) + "-byte file");
  }
  *offset = static_cast<int64_t>(o);
  *bytes = static_cast<int64_t>(n);
}

// mapFile(path, expectedBytes): [handle, sizeBytes]. Maps the whole file read-only; expectedBytes (-1: any)
// is the size its header was validated against (out_of_range when the file changed since).
Napi::Value map_file(const Napi::CallbackInfo& info) {
  need_args(info, 2);
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_code(env, "invalid_argument", "mapFile: path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  MappingRef m;
  check(env, FileMapping::open(path.c_str(), static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue()), &m));
  MappingRef* holder = new MappingRef(std::move(m));
  Napi::Array arr = Napi::Array::New(env, 2);
  arr.Set(0u, Napi::External<MappingRef>::New(env, holder, [](Napi::Env, MappingRef* h) { delete h; }));
  arr.Set(1u, Napi::Number::New(env, static_cast<double>((*holder)->size())));
  return arr;
}

// unmapFile(handle): drops the handle's reference (idempotent).
Napi::Value unmap_file(const Napi::CallbackInfo& info) {
  need_args(info, 1);
  MappingRef* m = info[0].IsExternal() ? info[0].As<Napi::External<MappingRef>>().Data() : nullptr;
  if (m != nullptr) m->reset();
  return info.Env().Undefined();
}

// mappingView(handle, offset, bytes): a read-only ArrayBuffer over those bytes of the file; it keeps
// the mapping alive until collected. Writing into it faults (PROT_READ): callers only read.
Napi::Value mapping_view(const Napi::CallbackInfo& info) {
  need_args(info, 3);
  Napi::Env env = info.Env();
  const MappingRef& m = mapping_of(info[0]);
  int64_t offset = 0, bytes = 0;
  range_of(info, 1, *m, &offset, &bytes, "mappingView");
  MappingRef* keep = new MappingRef(m);
  return Napi::ArrayBuffer::New(env, const_cast<char*>(m->data()) + offset, static_cast<size_t>(bytes),
                                [](Napi::Env, void*, MappingRef* k) { delete k; }, keep);
}

// allocMapped(engine, handle, offset, bytes): [id, ArrayBuffer] like alloc, over the file's bytes
// (no copy). Read-only: such a buffer is only ever an op input; free() releases it as any buffer.
Napi::Value alloc_mapped(const Napi::CallbackInfo& info) {
  need_args(info, 4);
  Napi::Env env = info.Env();
  CpuEngine* e = engine_of(info[0]);
  const MappingRef& m = mapping_of(info[1]);
  int64_t offset = 0, bytes = 0;
  range_of(info, 2, *m, &offset, &bytes, "allocMapped");
  int32_t id = -1;
  void* ptr = nullptr;
  check(env, e->adopt_mapped(m, offset, bytes, &id, &ptr));
  return buffer_result(env, e, id, ptr, bytes);
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  tmill::addon::register_host_functions(env, exports);  // probeReadBandwidth, trimMemory
  exports.Set("createEngine", Napi::Function::New(env, create_engine, "createEngine"));
  exports.Set("destroyEngine", Napi::Function::New(env, destroy_engine, "destroyEngine"));
  exports.Set("engineInfo", Napi::Function::New(env, engine_info, "engineInfo"));
  exports.Set("alloc", Napi::Function::New(env, alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, free_buffer, "free"));
  exports.Set("flush", Napi::Function::New(env, flush, "flush"));
  exports.Set("flushAsync", Napi::Function::New(env, flush_async, "flushAsync"));
  exports.Set("waitIdle", Napi::Function::New(env, wait_idle, "waitIdle"));
  exports.Set("convertFromF32", Napi::Function::New(env, convert_from_f32, "convertFromF32"));
  if (tmill::cpu::file_mapping_supported()) {
    exports.Set("mapFile", Napi::Function::New(env, map_file, "mapFile"));
    exports.Set("unmapFile", Napi::Function::New(env, unmap_file, "unmapFile"));
    exports.Set("mappingView", Napi::Function::New(env, mapping_view, "mappingView"));
    exports.Set("allocMapped", Napi::Function::New(env, alloc_mapped, "allocMapped"));
  }
  // The op ABI this binary was built with (op_abi.h), so the TS side can refuse a stale build.
  Napi::Array abi = Napi::Array::New(env, tmill::cpu::kNumOps);
  for (uint32_t i = 0; i < static_cast<uint32_t>(tmill::cpu::kNumOps); i++) abi.Set(i, Napi::Number::New(env, tmill::cpu::kOpPayloadInts[i]));
  exports.Set("opPayloadInts", abi);
  // NVML sampling (nvml_sampler.cpp) is plain N-API: wrap its callback as a function.
  napi_value nvml;
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, "nvmlSample", NAPI_AUTO_LENGTH, tm_nvml_sample, nullptr, &nvml), exports);
  exports.Set("nvmlSample", Napi::Value(env, nvml));
  return exports;
}

}  // namespace

NODE_API_MODULE(tokenmill_cpu, init)
