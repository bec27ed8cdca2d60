// N-API glue for the CPU addon (tokenmill_cpu.node): unpacks arguments, owns CpuEngine handles,
// exposes tensor buffers as external ArrayBuffers, and turns a non-ok tmill::Status into a JS Error
// whose `code` is the status name (the TS side maps it to TokenmillError). No kernels here.
#include <node_api.h>

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "../common/dtype.h"
#include "../cpu/engine.h"

using tmill::Status;
using tmill::StatusCode;
using tmill::cpu::CpuEngine;

namespace {

const char* code_name(StatusCode c) {
  switch (c) {
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    default: return "internal";
  }
}

napi_value throw_status(napi_env env, const Status& s) {
  napi_throw_error(env, code_name(s.code), s.message);
  return nullptr;
}
napi_value throw_msg(napi_env env, const char* msg) {
  napi_throw_error(env, "invalid_argument", msg);
  return nullptr;
}

#define NAPI_OK(call)                                                        \
  do {                                                                       \
    if ((call) != napi_ok) return throw_msg(env, "N-API call failed: " #call); \
  } while (0)

template <size_t N>
bool get_args(napi_env env, napi_callback_info info, napi_value (&argv)[N], size_t need) {
  size_t argc = N;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < need) {
    napi_throw_error(env, "invalid_argument", "too few arguments");
    return false;
  }
  return true;
}

// One queued flush running on a libuv worker thread (the pool's workers help it).
struct FlushJob {
  std::vector<int32_t> cmds;
  Status status;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  struct AddonEngine* owner = nullptr;
};

// The handle JS holds: the engine plus at most one in-flight async flush. Every other addon call
// waits for that flush first (TS does so too), so the engine is never used from two threads.
struct AddonEngine {
  CpuEngine* engine = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool busy = false;
  Status last;  // status of the last async flush, reported once by wait_idle
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return !busy; });
  }
};

AddonEngine* handle_of(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr ||
      static_cast<AddonEngine*>(p)->engine == nullptr) {
    napi_throw_error(env, "invalid_argument", "not a live CPU engine handle (disposed?)");
    return nullptr;
  }
  return static_cast<AddonEngine*>(p);
}

CpuEngine* engine_of(napi_env env, napi_value v) {
  AddonEngine* h = handle_of(env, v);
  if (h == nullptr) return nullptr;
  h->wait();
  return h->engine;
}

void finalize_handle(napi_env, void* data, void*) {
  AddonEngine* h = static_cast<AddonEngine*>(data);
  h->wait();
  delete h->engine;
  delete h;
}

// createEngine(numThreads: number, forceIsa: string): External
napi_value create_engine(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, argv, 2)) return nullptr;
  int32_t threads = 1;
  NAPI_OK(napi_get_value_int32(env, argv[0], &threads));
  char isa[32] = {0};
  size_t len = 0;
  NAPI_OK(napi_get_value_string_utf8(env, argv[1], isa, sizeof(isa), &len));
  CpuEngine* e = new (std::nothrow) CpuEngine(threads, tmill::cpu::select_kernels(isa));
  AddonEngine* h = new (std::nothrow) AddonEngine();
  if (e == nullptr || h == nullptr) { napi_throw_error(env, "out_of_memory", "cannot create CPU engine"); return nullptr; }
  h->engine = e;
  napi_value ext;
  NAPI_OK(napi_create_external(env, h, finalize_handle, nullptr, &ext));
  return ext;
}

// destroyEngine(engine): frees every buffer and joins the pool. The handle must not be used again.
napi_value destroy_engine(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, argv, 1)) return nullptr;
  AddonEngine* h = handle_of(env, argv[0]);
  if (h == nullptr) return nullptr;
  h->wait();
  delete h->engine;
  h->engine = nullptr;  // the AddonEngine itself stays (a pending completion may still touch it)
  return nullptr;
}

// engineInfo(engine): { isa, numThreads, allocatedBytes }
napi_value engine_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, argv, 1)) return nullptr;
  CpuEngine* e = engine_of(env, argv[0]);
  if (e == nullptr) return nullptr;
  napi_value obj, isa, nt, ab;
  NAPI_OK(napi_create_object(env, &obj));
  NAPI_OK(napi_create_string_utf8(env, e->kernels()->isa, NAPI_AUTO_LENGTH, &isa));
  NAPI_OK(napi_create_int32(env, e->num_threads(), &nt));
  NAPI_OK(napi_create_double(env, static_cast<double>(e->allocated_bytes()), &ab));
  NAPI_OK(napi_set_named_property(env, obj, "isa", isa));
  NAPI_OK(napi_set_named_property(env, obj, "numThreads", nt));
  NAPI_OK(napi_set_named_property(env, obj, "allocatedBytes", ab));
  if (e->profiling()) {
    napi_value ns, calls;
    NAPI_OK(napi_create_array_with_length(env, tmill::cpu::kNumOps, &ns));
    NAPI_OK(napi_create_array_with_length(env, tmill::cpu::kNumOps, &calls));
    for (int i = 0; i < tmill::cpu::kNumOps; i++) {
      napi_value a, b;
      NAPI_OK(napi_create_double(env, static_cast<double>(e->op_time_ns()[i]), &a));
      NAPI_OK(napi_create_double(env, static_cast<double>(e->op_calls()[i]), &b));
      NAPI_OK(napi_set_element(env, ns, static_cast<uint32_t>(i), a));
      NAPI_OK(napi_set_element(env, calls, static_cast<uint32_t>(i), b));
    }
    NAPI_OK(napi_set_named_property(env, obj, "opTimeNs", ns));
    NAPI_OK(napi_set_named_property(env, obj, "opCalls", calls));
  }
  return obj;
}

// alloc(engine, bytes): [id, ArrayBuffer] (64-byte aligned external memory owned by the engine)
napi_value alloc(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, argv, 2)) return nullptr;
  CpuEngine* e = engine_of(env, argv[0]);
  if (e == nullptr) return nullptr;
  double bytes = 0;
  NAPI_OK(napi_get_value_double(env, argv[1], &bytes));
  int32_t id = -1;
  void* ptr = nullptr;
  Status s = e->alloc(static_cast<int64_t>(bytes), &id, &ptr);
  if (!s.ok()) return throw_status(env, s);
  napi_value ab, idv, arr;
  if (napi_create_external_arraybuffer(env, ptr, static_cast<size_t>(bytes), nullptr, nullptr, &ab) != napi_ok) {
    e->release(id);
    return throw_msg(env, "cannot create an external ArrayBuffer");
  }
  NAPI_OK(napi_create_int32(env, id, &idv));
  NAPI_OK(napi_create_array_with_length(env, 2, &arr));
  NAPI_OK(napi_set_element(env, arr, 0, idv));
  NAPI_OK(napi_set_element(env, arr, 1, ab));
  return arr;
}

// free(engine, id, arrayBuffer): detaches the ArrayBuffer (JS views read as empty) and frees memory.
napi_value free_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, argv, 3)) return nullptr;
  CpuEngine* e = engine_of(env, argv[0]);
  if (e == nullptr) return nullptr;
  int32_t id = -1;
  NAPI_OK(napi_get_value_int32(env, argv[1], &id));
  bool detachable = false;
  if (napi_is_detached_arraybuffer(env, argv[2], &detachable) == napi_ok && !detachable)
    NAPI_OK(napi_detach_arraybuffer(env, argv[2]));
  Status s = e->release(id);
  if (!s.ok()) return throw_status(env, s);
  return nullptr;
}

// flush(engine, commands: Int32Array, numInts): runs the recorded ops in order.
napi_value flush(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, argv, 3)) return nullptr;
  CpuEngine* e = engine_of(env, argv[0]);
  if (e == nullptr) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr));
  if (type != napi_int32_array) return throw_msg(env, "flush: commands must be an Int32Array");
  int32_t n = 0;
  NAPI_OK(napi_get_value_int32(env, argv[2], &n));
  if (n < 0 || static_cast<size_t>(n) > length) return throw_msg(env, "flush: bad command count");
  Status s = e->execute(static_cast<const int32_t*>(data), n);
  if (!s.ok()) return throw_status(env, s);
  return nullptr;
}

void flush_execute(napi_env, void* data) {
  FlushJob* job = static_cast<FlushJob*>(data);
  job->status = job->owner->engine->execute(job->cmds.data(), static_cast<int64_t>(job->cmds.size()));
  std::lock_guard<std::mutex> lk(job->owner->mu);
  if (!job->status.ok()) job->owner->last = job->status;
  job->owner->busy = false;
  job->owner->cv.notify_all();
}

// Always resolves: the outcome is reported once, by the next waitIdle() (or any other call).
void flush_complete(napi_env env, napi_status, void* data) {
  FlushJob* job = static_cast<FlushJob*>(data);
  napi_value undef;
  napi_get_undefined(env, &undef);
  napi_resolve_deferred(env, job->deferred, undef);
  napi_delete_async_work(env, job->work);
  delete job;
}

// flushAsync(engine, commands: Int32Array, numInts): Promise<void>. Copies the commands and runs
// them on a libuv worker thread (with the engine's pool), leaving the JS thread free.
napi_value flush_async(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, argv, 3)) return nullptr;
  if (engine_of(env, argv[0]) == nullptr) return nullptr;  // waits for an earlier flush
  AddonEngine* h = handle_of(env, argv[0]);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr));
  if (type != napi_int32_array) return throw_msg(env, "flushAsync: commands must be an Int32Array");
  int32_t n = 0;
  NAPI_OK(napi_get_value_int32(env, argv[2], &n));
  if (n < 0 || static_cast<size_t>(n) > length) return throw_msg(env, "flushAsync: bad command count");
  FlushJob* job = new (std::nothrow) FlushJob();
  if (job == nullptr) { napi_throw_error(env, "out_of_memory", "flushAsync: no memory"); return nullptr; }
  const int32_t* c = static_cast<const int32_t*>(data);
  job->cmds.assign(c, c + n);
  job->owner = h;
  napi_value promise, name;
  NAPI_OK(napi_create_promise(env, &job->deferred, &promise));
  NAPI_OK(napi_create_string_utf8(env, "tokenmill_cpu_flush", NAPI_AUTO_LENGTH, &name));
  NAPI_OK(napi_create_async_work(env, nullptr, name, flush_execute, flush_complete, job, &job->work));
  {
    std::lock_guard<std::mutex> lk(h->mu);
    h->busy = true;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    std::lock_guard<std::mutex> lk(h->mu);
    h->busy = false;
    return throw_msg(env, "flushAsync: cannot queue work");
  }
  return promise;
}

// waitIdle(engine): blocks until no async flush is running; throws (once) if the last one failed.
napi_value wait_idle(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, argv, 1)) return nullptr;
  AddonEngine* h = handle_of(env, argv[0]);
  if (h == nullptr) return nullptr;
  h->wait();
  if (!h->last.ok()) {
    Status s = h->last;
    h->last = Status::Ok();
    return throw_status(env, s);
  }
  return nullptr;
}

// convertFromF32(engine, src: Float32Array, id, byteOffset, dtypeCode): writes src into the
// buffer as f16 or bf16 (round to nearest even).
napi_value convert_from_f32(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, argv, 5)) return nullptr;
  CpuEngine* e = engine_of(env, argv[0]);
  if (e == nullptr) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr));
  if (type != napi_float32_array) return throw_msg(env, "convertFromF32: src must be a Float32Array");
  int32_t id = -1, dt = 0;
  double off = 0;
  NAPI_OK(napi_get_value_int32(env, argv[2], &id));
  NAPI_OK(napi_get_value_double(env, argv[3], &off));
  NAPI_OK(napi_get_value_int32(env, argv[4], &dt));
  uint16_t* dst = static_cast<uint16_t*>(e->buffer_ptr(id, static_cast<int64_t>(off), static_cast<int64_t>(length) * 2));
  if (dst == nullptr || (dt != 1 && dt != 2)) return throw_msg(env, "convertFromF32: bad destination");
  const float* src = static_cast<const float*>(data);
  if (dt == 1) for (size_t i = 0; i < length; i++) dst[i] = tmill::f32_to_f16(src[i]);
  else for (size_t i = 0; i < length; i++) dst[i] = tmill::f32_to_bf16(src[i]);
  return nullptr;
}

napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"createEngine", nullptr, create_engine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"destroyEngine", nullptr, destroy_engine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"engineInfo", nullptr, engine_info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"alloc", nullptr, alloc, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"free", nullptr, free_buffer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"flush", nullptr, flush, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"flushAsync", nullptr, flush_async, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"waitIdle", nullptr, wait_idle, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convertFromF32", nullptr, convert_from_f32, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  // The op ABI this binary was built with (op_abi.h), so the TS side can check a stale build.
  napi_value abi;
  NAPI_OK(napi_create_array_with_length(env, tmill::cpu::kNumOps, &abi));
  for (int i = 0; i < tmill::cpu::kNumOps; i++) {
    napi_value v;
    NAPI_OK(napi_create_int32(env, tmill::cpu::kOpPayloadInts[i], &v));
    NAPI_OK(napi_set_element(env, abi, static_cast<uint32_t>(i), v));
  }
  NAPI_OK(napi_set_named_property(env, exports, "opPayloadInts", abi));
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
