// Status codes and CHECK macros for native code: every fallible function returns tmill::Status; CHECK
// records file:line and a message and returns early. Native code never aborts or exits the process.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tmill {

enum class StatusCode : int { kOk = 0, kInvalidArgument = 1, kOutOfRange = 2, kOutOfMemory = 3, kInternal = 4 };

struct Status {
  StatusCode code = StatusCode::kOk;
  char message[240] = {0};
  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return Status(); }
};

inline Status make_status(StatusCode code, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
inline Status make_status(StatusCode code, const char* file, int line, const char* fmt, ...) {
  Status s;
  s.code = code;
  const char* base = std::strrchr(file, '/');
  int n = std::snprintf(s.message, sizeof(s.message), "%s:%d: ", base ? base + 1 : file, line);
  if (n < 0) n = 0;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(s.message + n, sizeof(s.message) - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  return s;
}

}  // namespace tmill

// CHECK(cond, code, fmt, ...): if cond is false, return a Status carrying file:line and the message.
#define TM_CHECK(cond, code, ...)                                                   \
  do {                                                                              \
    if (__builtin_expect(!(cond), 0))                                               \
      return ::tmill::make_status(::tmill::StatusCode::code, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define TM_CHECK_ARG(cond, ...) TM_CHECK(cond, kInvalidArgument, __VA_ARGS__)
#define TM_CHECK_RANGE(cond, ...) TM_CHECK(cond, kOutOfRange, __VA_ARGS__)
// Propagate a non-ok Status from a call.
#define TM_RETURN_IF_ERROR(expr)           \
  do {                                     \
    ::tmill::Status _st = (expr);             \
    if (__builtin_expect(!_st.ok(), 0)) return _st; \
  } while (0)
