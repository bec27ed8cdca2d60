// Fused decode op ropeKvWriteQkv: per token, split one interleaved qkv row (H query heads, Hkv key
// heads, Hkv value heads), rotate q and k (rope.cu math: f32 angle pos * invFreq[i], sincosf, one
// rounding on store), write q to qOut [T, H, Dh] and k, v into the paged cache at slotMapping[t]
// (kv_write.cu semantics: slots outside [0, numSlots) are skipped). Replaces rope + kvWrite (and the
// split matmul outputs) with one launch; results are bit-identical to them.
// Shapes: qkv [T, (H + 2 Hkv) * Dh]; caches [numSlots, Hkv * Dh]; positions, slots i32 [T]; invFreq f32 [Dh/2].
// Threads: one block per token; thread j handles pair (head, i) over (H + Hkv) * Dh/2, then V copy.
// Assumptions: Dh even (checked). GB/s: not measured yet (bench/gpu/kernel-bench next GPU session).
#include "common.cuh"

template <typename T>
__global__ void qkv_rope_kv_kernel(T* qOut, const T* qkv, T* kc, T* vc, const int32_t* positions, const float* invFreq,
                                   const int32_t* slots, int H, int Hkv, int Dh, long long numSlots) {
  const int t = blockIdx.x, half = Dh >> 1;
  const float pos = (float)positions[t];
  const long long slot = slots[t];
  const bool write = slot >= 0 && slot < numSlots;
  const T* x = qkv + (size_t)t * (H + 2 * Hkv) * Dh;
  const int numRot = (write ? H + Hkv : H) * half;
  for (int j = threadIdx.x; j < numRot; j += blockDim.x) {
    const int head = j / half, i = j - head * half;
    const T* src = x + (size_t)head * Dh;  // q heads then k heads, back to back in the row
    T* dst = head < H ? qOut + ((size_t)t * H + head) * Dh : kc + (slot * Hkv + (head - H)) * Dh;
    float sn, cs;
    sincosf(pos * invFreq[i], &sn, &cs);
    const float a = to_f(src[i]), b = to_f(src[i + half]);
    dst[i] = from_f<T>(a * cs - b * sn);
    dst[i + half] = from_f<T>(b * cs + a * sn);
  }
  if (!write) return;
  const int nv = Hkv * Dh;
  const T* vs = x + (size_t)(H + Hkv) * Dh;
  T* vd = vc + slot * nv;
  for (int i = threadIdx.x; i < nv; i += blockDim.x) vd[i] = vs[i];
}

extern "C" cudaError_t launch_qkv_rope_kv(void* qOut, const void* qkv, void* kCache, void* vCache, int dt, const int32_t* positions,
                                          const float* invFreq, const int32_t* slotMapping, int numTokens, int numHeads,
                                          int numKvHeads, int headDim, long long numSlots, cudaStream_t s) {
  if (numTokens <= 0) return cudaSuccess;
  if ((headDim & 1) || numHeads <= 0 || numKvHeads <= 0) return cudaErrorInvalidValue;
  TM_DISPATCH_FLOAT(dt, T, qkv_rope_kv_kernel<T><<<numTokens, 256, 0, s>>>((T*)qOut, (const T*)qkv, (T*)kCache, (T*)vCache, positions,
                                                                          invFreq, slotMapping, numHeads, numKvHeads, headDim, numSlots));
  return cudaGetLastError();
}
