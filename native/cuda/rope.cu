// Rotary position embedding in place, HF rotate_half layout.
// Math: for head vector x and i < Dh/2, angle = pos * invFreq[i] (f32, precise sincosf):
//   x[i] = a cos - b sin, x[i + Dh/2] = b cos + a sin with a = x[i], b = x[i + Dh/2].
// Shapes: q [T, H, Dh], k [T, Hkv, Dh] in the compute dtype; positions i32 [T]; invFreq f32 [Dh/2].
// Threads: one block per token; thread j handles pair (head, i) for j over (H + Hkv) * Dh/2.
// Assumptions: Dh even. GB/s: not measured yet.
#include "common.cuh"

template <typename T>
__global__ void rope_kernel(T* q, T* k, const int32_t* positions, const float* invFreq, int H, int Hkv, int Dh) {
  const int t = blockIdx.x, half = Dh >> 1;
  const float pos = (float)positions[t];
  const int total = (H + Hkv) * half;
  for (int j = threadIdx.x; j < total; j += blockDim.x) {
    const int head = j / half, i = j - head * half;
    T* base = head < H ? q + ((size_t)t * H + head) * Dh : k + ((size_t)t * Hkv + (head - H)) * Dh;
    float sn, cs;
    sincosf(pos * invFreq[i], &sn, &cs);
    const float a = to_f(base[i]), b = to_f(base[i + half]);
    base[i] = from_f<T>(a * cs - b * sn);
    base[i + half] = from_f<T>(b * cs + a * sn);
  }
}

extern "C" cudaError_t launch_rope(void* q, void* k, int dt, const int32_t* positions, const float* invFreq,
                                   int numTokens, int numHeads, int numKvHeads, int headDim, cudaStream_t s) {
  if (numTokens <= 0) return cudaSuccess;
  if (headDim & 1) return cudaErrorInvalidValue;
  TM_DISPATCH_FLOAT(dt, T, rope_kernel<T><<<numTokens, 256, 0, s>>>((T*)q, (T*)k, positions, invFreq, numHeads, numKvHeads, headDim));
  return cudaGetLastError();
}
