// Row gathers and dtype conversion: embedding lookup (out[t,:] = table[ids[t],:]), gatherRows
// (out[s,:] = x[rows[s],:]) and an elementwise convert. Math: copies with f32 <-> f16/bf16 rounding
// (round to nearest even). Layout: row-major, contiguous. Threads: one block per output row,
// threads stride over columns. Indexes outside the source are not read: that row is written as 0.
// Memory-bound and tiny per step (a few rows); GB/s not measured yet.
#include "common.cuh"

__global__ void gather_rows_kernel(void* out, int dtOut, const void* src, int dtSrc, const int32_t* idx,
                                   int numSrcRows, int cols) {
  const int r = blockIdx.x;
  const int id = idx[r];
  const bool ok = id >= 0 && id < numSrcRows;
  const size_t o = (size_t)r * cols, i0 = (size_t)(ok ? id : 0) * cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    st_any(out, dtOut, o + c, ok ? ld_any(src, dtSrc, i0 + c) : 0.f);
  }
}

__global__ void convert_kernel(void* out, int dtOut, const void* src, int dtSrc, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    st_any(out, dtOut, i, ld_any(src, dtSrc, i));
  }
}

extern "C" cudaError_t launch_gather_rows(void* out, int dtOut, const void* src, int dtSrc, const int32_t* idx,
                                          int numRows, int numSrcRows, int cols, cudaStream_t s) {
  if (numRows <= 0 || cols <= 0) return cudaSuccess;
  gather_rows_kernel<<<numRows, 256, 0, s>>>(out, dtOut, src, dtSrc, idx, numSrcRows, cols);
  return cudaGetLastError();
}

extern "C" cudaError_t launch_convert(void* out, int dtOut, const void* src, int dtSrc, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  unsigned blocks = tm_cdiv(n, 256);
  if (blocks > 65535u * 4) blocks = 65535u * 4;
  convert_kernel<<<blocks, 256, 0, s>>>(out, dtOut, src, dtSrc, n);
  return cudaGetLastError();
}
