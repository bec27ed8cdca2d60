// Elementwise ops: silu-mul (SwiGLU), bias add.
// Math: siluMul out[t,i] = round_T(round_T(silu(g)) * u) with g = gateUp[t,i], u = gateUp[t,I+i]
// (silu in f32, as HF computes act_fn(gate) * up in the model dtype); bias add out[r,c] += bias[c].
// Shapes: gateUp [T, 2I], out [T, I]. Threads: grid-stride, one element per thread step.
// GB/s: not measured yet.
#include "common.cuh"

template <typename T>
__global__ void silu_mul_kernel(T* out, const T* gu, int rows, int inter) {
  const size_t n = (size_t)rows * inter;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / inter, c = i - r * inter;
    const float g = to_f(gu[r * 2 * inter + c]), u = to_f(gu[r * 2 * inter + inter + c]);
    const float sg = round_t<T>(g / (1.f + expf(-g)));
    out[i] = from_f<T>(sg * u);
  }
}

__global__ void add_bias_kernel(void* out, int dtOut, const void* bias, int dtBias, int rows, int cols) {
  const size_t n = (size_t)rows * cols;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    st_any(out, dtOut, i, ld_any(out, dtOut, i) + ld_any(bias, dtBias, i % cols));
  }
}

static unsigned grid_for(size_t n) {
  unsigned b = tm_cdiv(n, 256);
  return b > 65535u * 8 ? 65535u * 8 : (b == 0 ? 1 : b);
}

extern "C" cudaError_t launch_silu_mul(void* out, const void* gateUp, int dt, int rows, int inter, cudaStream_t s) {
  const size_t n = (size_t)rows * inter;
  if (n == 0) return cudaSuccess;
  TM_DISPATCH_FLOAT(dt, T, silu_mul_kernel<T><<<grid_for(n), 256, 0, s>>>((T*)out, (const T*)gateUp, rows, inter));
  return cudaGetLastError();
}

extern "C" cudaError_t launch_add_bias(void* out, int dtOut, const void* bias, int dtBias, int rows, int cols, cudaStream_t s) {
  const size_t n = (size_t)rows * cols;
  if (n == 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(n), 256, 0, s>>>(out, dtOut, bias, dtBias, rows, cols);
  return cudaGetLastError();
}
