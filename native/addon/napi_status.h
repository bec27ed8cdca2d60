// N-API error glue of the CPU addon: a non-ok tmill::Status becomes a JS Error whose `code` is the
// status name (the TS side maps it to TokenmillError), and argument-count checks throw the same way.
#pragma once
#include <napi.h>

#include <string>

#include "../common/status.h"

namespace tmill { namespace addon {

inline const char* code_name(StatusCode c) {
  switch (c) {
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kOutOfRange: return "out_of_range";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    default: return "internal";
  }
}

[[noreturn]] inline void throw_code(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}
[[noreturn]] inline void throw_status(Napi::Env env, const Status& s) { throw_code(env, code_name(s.code), s.message); }
inline void check(Napi::Env env, const Status& s) {
  if (!s.ok()) throw_status(env, s);
}
inline void need_args(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) throw_code(info.Env(), "invalid_argument", "too few arguments");
}

}}  // namespace tmill::addon
