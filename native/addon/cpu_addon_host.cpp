// See cpu_addon_host.h.
#include "cpu_addon_host.h"

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif
#include <cstdint>
#include <string>
#include <vector>

#include "../cpu/ggml_quantize.h"
#include "../cpu/read_probe.h"
#include "napi_status.h"

using tmill::addon::need_args;
using tmill::addon::throw_code;

namespace {

// probeReadBandwidth(numThreads, sizeBytes, reps): GB/s per rep. Bench only: blocks the caller for
// about reps * sizeBytes / bandwidth (a 1 GiB buffer: ~0.1 s per rep).
Napi::Value probe_read_bandwidth(const Napi::CallbackInfo& info) {
  need_args(info, 3);
  const int32_t threads = info[0].As<Napi::Number>().Int32Value();
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  const int32_t reps = info[2].As<Napi::Number>().Int32Value();
  if (threads < 1 || threads > 1024 || !(bytes >= 4096 && bytes <= 64.0 * (1ull << 30)) || reps < 1 || reps > 1000)
    throw_code(info.Env(), "invalid_argument", "probeReadBandwidth: threads 1..1024, sizeBytes 4 KiB..64 GiB, reps 1..1000");
  const std::vector<double> gbs = tmill::cpu::probe_read_bandwidth(threads, static_cast<int64_t>(bytes), reps);
  if (gbs.empty()) throw_code(info.Env(), "out_of_memory", "probeReadBandwidth: cannot allocate the buffer");
  Napi::Array arr = Napi::Array::New(info.Env(), static_cast<uint32_t>(reps));
  for (uint32_t i = 0; i < static_cast<uint32_t>(reps); i++) arr.Set(i, Napi::Number::New(info.Env(), gbs[i]));
  return arr;
}

// quantizeGgml(type, x: Float32Array, N, K, threads, isa?): a new Uint8Array of N rows of `type`
// blocks (ggml_quantize.h; the caller has checked that every weight is finite). Blocks the caller: it
// is for `convert to-gguf`, a one-shot job, and uses `threads` threads of its own. isa: 'auto'
// (default), 'baseline', 'avx2' or 'avx512' (tests force each; invalid_argument where unavailable).
Napi::Value quantize_ggml(const Napi::CallbackInfo& info) {
  need_args(info, 5);
  const int32_t type = info[0].As<Napi::Number>().Int32Value();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_code(info.Env(), "invalid_argument", "quantizeGgml: x must be a Float32Array");
  const Napi::Float32Array x = info[1].As<Napi::Float32Array>();
  const double n = info[2].As<Napi::Number>().DoubleValue(), k = info[3].As<Napi::Number>().DoubleValue();
  const int32_t threads = info[4].As<Napi::Number>().Int32Value();
  if (!(n >= 0 && k > 0 && n * k == static_cast<double>(x.ElementLength()) && n <= 9.0e15) || threads < 1 || threads > 1024)
    throw_code(info.Env(), "invalid_argument", "quantizeGgml: x must hold N x K weights, threads 1..1024");
  const int64_t N = static_cast<int64_t>(n), K = static_cast<int64_t>(k);
  using tmill::cpu::QuantIsa;
  const std::string isa_name = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "auto";
  const QuantIsa isa = isa_name == "baseline" ? QuantIsa::kBaseline
                       : isa_name == "avx2"   ? QuantIsa::kAvx2
                       : isa_name == "avx512" ? QuantIsa::kAvx512
                                              : QuantIsa::kAuto;
  if (isa == QuantIsa::kAuto && isa_name != "auto")
    throw_code(info.Env(), "invalid_argument", "quantizeGgml: isa is auto, baseline, avx2 or avx512, got " + isa_name);
  if (!tmill::cpu::quantize_isa_available(isa))
    throw_code(info.Env(), "invalid_argument", "quantizeGgml: this CPU cannot run the " + isa_name + " quantizer");
  const int64_t rb = tmill::cpu::ggml_quantize_row_bytes(type, K);
  if (rb == 0) throw_code(info.Env(), "invalid_argument", "quantizeGgml: unsupported type or K not a multiple of its block");
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), static_cast<size_t>(N * rb));
  tmill::cpu::quantize_ggml_rows(type, x.Data(), N, K, out.Data(), threads, isa);
  return out;
}

// trimMemory(): hands the allocator's free memory back to the OS (glibc malloc_trim: the arenas
// keep what request parsing, sockets and worker threads freed); false where there is no such call.
Napi::Value trim_memory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

namespace tmill::addon {

void register_host_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("probeReadBandwidth", Napi::Function::New(env, probe_read_bandwidth, "probeReadBandwidth"));
  exports.Set("quantizeGgml", Napi::Function::New(env, quantize_ggml, "quantizeGgml"));
  exports.Set("trimMemory", Napi::Function::New(env, trim_memory, "trimMemory"));
}

}  // namespace tmill::addon
