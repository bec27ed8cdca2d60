// NVML sampling for the CPU addon: opens libnvidia-ml with dlopen (never linked, so the addon loads
// on machines without an NVIDIA driver), and reads utilisation, memory, power, temperature and SM
// clock of every GPU on a libuv worker thread (a Promise), so no NVML call ever runs on the event
// loop or inside an engine step. A missing library or a failed nvmlInit is a result, not an error.
#include "nvml_sampler.h"

#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

// The few NVML types and entry points we use (ABI from nvml.h; no header needed to build).
typedef struct nvmlDevice_st* nvmlDevice_t;
typedef int nvmlReturn_t;
struct nvmlUtilization_t { unsigned int gpu; unsigned int memory; };
struct nvmlMemory_t { unsigned long long total; unsigned long long free; unsigned long long used; };
constexpr int kNvmlTemperatureGpu = 0;
constexpr int kNvmlClockSm = 1;

struct NvmlApi {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*get_count)(unsigned int*);
  nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*get_util)(nvmlDevice_t, nvmlUtilization_t*);
  nvmlReturn_t (*get_memory)(nvmlDevice_t, nvmlMemory_t*);
  nvmlReturn_t (*get_power)(nvmlDevice_t, unsigned int*);
  nvmlReturn_t (*get_temperature)(nvmlDevice_t, int, unsigned int*);
  nvmlReturn_t (*get_clock)(nvmlDevice_t, int, unsigned int*);
};

struct NvmlState {
  std::mutex mu;
  std::string library;  // the name the current handle was opened with
  void* handle = nullptr;
  bool ready = false;
  std::string reason;
  NvmlApi api{};
};

NvmlState& state() {
  static NvmlState s;
  return s;
}

template <typename F>
bool bind(void* h, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(h, name));
  return out != nullptr;
}

// Opens (or reopens, when asked for another library name) and initialises NVML. Holds s.mu.
void ensure_open(NvmlState& s, const std::string& library) {
  if (s.handle != nullptr && s.library == library) return;
  if (s.handle != nullptr) dlclose(s.handle);
  s.handle = nullptr;
  s.ready = false;
  s.library = library;
  s.handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (s.handle == nullptr) {
    const char* e = dlerror();
    s.reason = std::string("cannot load ") + library + (e != nullptr ? std::string(": ") + e : std::string());
    return;
  }
  NvmlApi& a = s.api;
  bool ok = bind(s.handle, "nvmlInit_v2", a.init) && bind(s.handle, "nvmlDeviceGetCount_v2", a.get_count) &&
            bind(s.handle, "nvmlDeviceGetHandleByIndex_v2", a.get_handle) && bind(s.handle, "nvmlDeviceGetName", a.get_name) &&
            bind(s.handle, "nvmlDeviceGetUtilizationRates", a.get_util) && bind(s.handle, "nvmlDeviceGetMemoryInfo", a.get_memory) &&
            bind(s.handle, "nvmlDeviceGetPowerUsage", a.get_power) && bind(s.handle, "nvmlDeviceGetTemperature", a.get_temperature) &&
            bind(s.handle, "nvmlDeviceGetClockInfo", a.get_clock);
  if (!ok) {
    s.reason = library + " lacks an NVML entry point this build needs";
    return;
  }
  nvmlReturn_t r = a.init();
  if (r != 0) {
    s.reason = "nvmlInit_v2 failed with NVML error " + std::to_string(r);
    return;
  }
  s.ready = true;
  s.reason = "";
}

struct DeviceSample {
  unsigned int index = 0;
  char name[96] = {0};
  // -1 marks a reading the device does not support.
  double util_pct = -1, mem_used = -1, mem_total = -1, power_w = -1, temp_c = -1, sm_clock_mhz = -1;
};

struct SampleJob {
  std::string library;
  bool available = false;
  std::string reason;
  std::vector<DeviceSample> devices;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
};

void sample_execute(napi_env, void* data) {
  auto* job = static_cast<SampleJob*>(data);
  NvmlState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  ensure_open(s, job->library);
  if (!s.ready) {
    job->reason = s.reason;
    return;
  }
  unsigned int n = 0;
  if (s.api.get_count(&n) != 0) {
    job->reason = "nvmlDeviceGetCount_v2 failed";
    return;
  }
  job->available = true;
  for (unsigned int i = 0; i < n; i++) {
    nvmlDevice_t d = nullptr;
    if (s.api.get_handle(i, &d) != 0) continue;
    DeviceSample ds;
    ds.index = i;
    if (s.api.get_name(d, ds.name, sizeof(ds.name)) != 0) ds.name[0] = 0;
    nvmlUtilization_t u{};
    if (s.api.get_util(d, &u) == 0) ds.util_pct = u.gpu;
    nvmlMemory_t m{};
    if (s.api.get_memory(d, &m) == 0) {
      ds.mem_used = static_cast<double>(m.used);
      ds.mem_total = static_cast<double>(m.total);
    }
    unsigned int v = 0;
    if (s.api.get_power(d, &v) == 0) ds.power_w = v / 1000.0;  // NVML reports milliwatts
    if (s.api.get_temperature(d, kNvmlTemperatureGpu, &v) == 0) ds.temp_c = v;
    if (s.api.get_clock(d, kNvmlClockSm, &v) == 0) ds.sm_clock_mhz = v;
    job->devices.push_back(ds);
  }
}

void set_number(napi_env env, napi_value obj, const char* key, double v) {
  napi_value val;
  if (v < 0) napi_get_null(env, &val);
  else napi_create_double(env, v, &val);
  napi_set_named_property(env, obj, key, val);
}

void sample_complete(napi_env env, napi_status, void* data) {
  auto* job = static_cast<SampleJob*>(data);
  napi_value out, tmp;
  napi_create_object(env, &out);
  napi_get_boolean(env, job->available, &tmp);
  napi_set_named_property(env, out, "available", tmp);
  napi_create_string_utf8(env, job->reason.c_str(), NAPI_AUTO_LENGTH, &tmp);
  napi_set_named_property(env, out, "reason", tmp);
  napi_value devices;
  napi_create_array_with_length(env, job->devices.size(), &devices);
  for (size_t i = 0; i < job->devices.size(); i++) {
    const DeviceSample& d = job->devices[i];
    napi_value o;
    napi_create_object(env, &o);
    napi_create_uint32(env, d.index, &tmp);
    napi_set_named_property(env, o, "index", tmp);
    napi_create_string_utf8(env, d.name, NAPI_AUTO_LENGTH, &tmp);
    napi_set_named_property(env, o, "name", tmp);
    set_number(env, o, "utilizationPct", d.util_pct);
    set_number(env, o, "memoryUsedBytes", d.mem_used);
    set_number(env, o, "memoryTotalBytes", d.mem_total);
    set_number(env, o, "powerWatts", d.power_w);
    set_number(env, o, "temperatureC", d.temp_c);
    set_number(env, o, "smClockMHz", d.sm_clock_mhz);
    napi_set_element(env, devices, static_cast<uint32_t>(i), o);
  }
  napi_set_named_property(env, out, "devices", devices);
  napi_resolve_deferred(env, job->deferred, out);
  napi_delete_async_work(env, job->work);
  delete job;
}

}  // namespace

// nvmlSample(library: string): Promise<{available, reason, devices[]}>; never rejects.
napi_value tm_nvml_sample(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  auto* job = new SampleJob();
  job->library = "libnvidia-ml.so.1";
  if (argc >= 1) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len) == napi_ok && len > 0) {
      std::vector<char> buf(len + 1);
      napi_get_value_string_utf8(env, argv[0], buf.data(), buf.size(), &len);
      job->library.assign(buf.data(), len);
    }
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    delete job;
    napi_throw_error(env, "internal", "nvmlSample: cannot create a promise");
    return nullptr;
  }
  napi_create_string_utf8(env, "tokenmill.nvmlSample", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, sample_execute, sample_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}
