// Device helpers shared by the kernels: f32 <-> f16/bf16 conversion, dtype dispatch, warp reductions.
// Header-only; no kernels live here.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include "tm_cuda.h"

typedef __nv_bfloat16 bf16;
typedef __half f16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(f16 x) { return __half2float(x); }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ f16 from_f<f16>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

// Round through T (identity for float): mimics a framework op whose result is stored in T.
template <typename T> __device__ __forceinline__ float round_t(float x) { return to_f(from_f<T>(x)); }

// Load element i of a float tensor of run-time dtype dt as f32 (for small, non-critical inputs).
__device__ __forceinline__ float ld_any(const void* p, int dt, size_t i) {
  if (dt == TM_BF16) return __bfloat162float(reinterpret_cast<const bf16*>(p)[i]);
  if (dt == TM_F16) return __half2float(reinterpret_cast<const f16*>(p)[i]);
  return reinterpret_cast<const float*>(p)[i];
}
__device__ __forceinline__ void st_any(void* p, int dt, size_t i, float v) {
  if (dt == TM_BF16) reinterpret_cast<bf16*>(p)[i] = __float2bfloat16_rn(v);
  else if (dt == TM_F16) reinterpret_cast<f16*>(p)[i] = __float2half_rn(v);
  else reinterpret_cast<float*>(p)[i] = v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (<= 1024). All threads get the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float red[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[wid] = v;
  __syncthreads();
  float t = lane < nw ? red[lane] : 0.f;
  return warp_sum(t);
}

// Unpack 8 consecutive elements (one 16-byte load for half types, two for f32) into floats.
template <typename T> struct Vec8;
template <> struct Vec8<bf16> {
  static __device__ __forceinline__ void load(const bf16* p, float* o) {
    uint4 u = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 f = __bfloat1622float2(h[i]); o[2 * i] = f.x; o[2 * i + 1] = f.y; }
  }
};
template <> struct Vec8<f16> {
  static __device__ __forceinline__ void load(const f16* p, float* o) {
    uint4 u = *reinterpret_cast<const uint4*>(p);
    const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 f = __half22float2(h[i]); o[2 * i] = f.x; o[2 * i + 1] = f.y; }
  }
};
template <> struct Vec8<float> {
  static __device__ __forceinline__ void load(const float* p, float* o) {
    float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
  }
};

// Dispatch a template on the activation dtype code (f32 / f16 / bf16).
#define TM_DISPATCH_FLOAT(dt, T, ...)                                   \
  do {                                                                  \
    if ((dt) == TM_BF16) { typedef bf16 T; __VA_ARGS__; }               \
    else if ((dt) == TM_F16) { typedef f16 T; __VA_ARGS__; }            \
    else if ((dt) == TM_F32) { typedef float T; __VA_ARGS__; }          \
    else return cudaErrorInvalidValue;                                  \
  } while (0)

static inline unsigned tm_cdiv(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }
