// Host stand-in for native/cuda/common.cuh, so that native/cuda/ggml_decode.cuh compiles with g++ on a
// machine without a GPU (test/cpu/cuda-ggml-decode.test.ts): the few device intrinsics it uses, with
// their device semantics (__vsub4: bytewise wrap-around subtraction; __fmul_rn: one rounded product).
#pragma once
#include <cstdint>
#include <cstring>
#include "native/common/dtype.h"
#define __device__
#define __forceinline__ inline
struct __half {
  uint16_t bits;
};
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline float __half2float(__half h) { return tmill::f16_to_f32(h.bits); }
inline uint32_t __vsub4(uint32_t a, uint32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 4; i++) r |= (uint32_t)(uint8_t)((a >> 8 * i) - (b >> 8 * i)) << 8 * i;
  return r;
}
inline float __fmul_rn(float a, float b) { return a * b; }
