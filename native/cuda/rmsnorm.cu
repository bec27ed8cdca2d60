// RMSNorm and fused residual-add + RMSNorm.
// Math: inv = rsqrt(mean(x^2) + eps) in f32; out = round_T(round_T(x * inv) * w), the two roundings
// matching HF's LlamaRMSNorm (normalize in f32, cast to the input dtype, multiply by the weight).
// addRmsnorm first stores residual = round_T(residual + x) and normalizes that stored value.
// Shapes: x, out, residual [R, D] in the compute dtype T; w [D] in any float dtype.
// Threads: one block per row (256 threads), threads stride over D; f32 block reduction.
// Assumptions: out may alias x (each element is read before it is written by the same thread).
// GB/s: not measured yet (per step it is a few KB per row; launch-bound at batch 1).
#include "common.cuh"

template <typename T>
__global__ void rmsnorm_kernel(T* out, const T* x, const void* w, int dtW, int cols, float eps) {
  const size_t row = (size_t)blockIdx.x * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) { float v = to_f(x[row + c]); ss += v * v; }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / (float)cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float y = round_t<T>(to_f(x[row + c]) * inv);
    out[row + c] = from_f<T>(y * ld_any(w, dtW, c));
  }
}

template <typename T>
__global__ void add_rmsnorm_kernel(T* out, T* residual, const T* x, const void* w, int dtW, int cols, float eps) {
  const size_t row = (size_t)blockIdx.x * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = round_t<T>(to_f(residual[row + c]) + to_f(x[row + c]));
    residual[row + c] = from_f<T>(v);
    ss += v * v;
  }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / (float)cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float y = round_t<T>(to_f(residual[row + c]) * inv);
    out[row + c] = from_f<T>(y * ld_any(w, dtW, c));
  }
}

extern "C" cudaError_t launch_rmsnorm(void* out, const void* x, const void* w, int dt, int dtW, int rows, int cols,
                                      float eps, cudaStream_t s) {
  if (rows <= 0) return cudaSuccess;
  TM_DISPATCH_FLOAT(dt, T, rmsnorm_kernel<T><<<rows, 256, 0, s>>>((T*)out, (const T*)x, w, dtW, cols, eps));
  return cudaGetLastError();
}

extern "C" cudaError_t launch_add_rmsnorm(void* out, void* residual, const void* x, const void* w, int dt, int dtW,
                                          int rows, int cols, float eps, cudaStream_t s) {
  if (rows <= 0) return cudaSuccess;
  TM_DISPATCH_FLOAT(dt, T, add_rmsnorm_kernel<T><<<rows, 256, 0, s>>>((T*)out, (T*)residual, (const T*)x, w, dtW, cols, eps));
  return cudaGetLastError();
}
