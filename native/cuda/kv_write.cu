// KV write into the paged cache: cache.k[slot] = k[t], cache.v[slot] = v[t] for slotMapping[t] >= 0.
// Shapes: k, v [T, Hkv * Dh]; caches [numSlots, Hkv * Dh] (numSlots = numBlocks * blockSize); all in
// the compute dtype. Threads: one block per token, 16-byte copies when the row size allows.
// Slots outside [0, numSlots) are skipped (never written). GB/s: not measured yet.
#include "common.cuh"

template <typename V>
__global__ void kv_write_kernel(V* kc, V* vc, const V* k, const V* v, const int32_t* slots, int rowVecs, long long numSlots) {
  const int t = blockIdx.x;
  const long long slot = slots[t];
  if (slot < 0 || slot >= numSlots) return;
  for (int i = threadIdx.x; i < rowVecs; i += blockDim.x) {
    kc[slot * rowVecs + i] = k[(size_t)t * rowVecs + i];
    vc[slot * rowVecs + i] = v[(size_t)t * rowVecs + i];
  }
}

extern "C" cudaError_t launch_kv_write(void* kCache, void* vCache, const void* k, const void* v, int dt,
                                       const int32_t* slotMapping, int numTokens, int rowElems, long long numSlots,
                                       cudaStream_t s) {
  if (numTokens <= 0) return cudaSuccess;
  const size_t rowBytes = (size_t)rowElems * (dt == TM_F32 ? 4 : 2);
  const bool aligned = ((uintptr_t)kCache | (uintptr_t)vCache | (uintptr_t)k | (uintptr_t)v) % 16 == 0;
  if (aligned && rowBytes % 16 == 0) {
    kv_write_kernel<uint4><<<numTokens, 128, 0, s>>>((uint4*)kCache, (uint4*)vCache, (const uint4*)k, (const uint4*)v,
                                                     slotMapping, (int)(rowBytes / 16), numSlots);
  } else if (rowBytes % 4 == 0) {
    kv_write_kernel<uint32_t><<<numTokens, 128, 0, s>>>((uint32_t*)kCache, (uint32_t*)vCache, (const uint32_t*)k,
                                                        (const uint32_t*)v, slotMapping, (int)(rowBytes / 4), numSlots);
  } else {
    kv_write_kernel<uint16_t><<<numTokens, 128, 0, s>>>((uint16_t*)kCache, (uint16_t*)vCache, (const uint16_t*)k,
                                                        (const uint16_t*)v, slotMapping, (int)(rowBytes / 2), numSlots);
  }
  return cudaGetLastError();
}
