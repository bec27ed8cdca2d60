// Argmax and device-side sampling, so only token ids cross to the host.
// argmax: out[s] = lowest index of the max of logits[s, :] (NaN never wins). One 512-thread block
// per row; strided scan then a shared-memory reduction.
// sample: one 1024-thread block per row. (1) token counts from history (bit 30: seen anywhere, for
// the repetition penalty; low bits: count among generated tokens, for presence/frequency);
// (2) penalties then temperature into a f32 scratch row; temperature <= 0 takes the argmax;
// (3) thresholds by radix select on order-preserving float keys (4 passes of 8 bits): top-k = the
// k-th largest value; min-p = max + ln(minP); top-p = the largest threshold whose kept softmax mass
// reaches p; kept = logits >= the largest threshold (ties at a threshold are all kept);
// (4) inverse-CDF draw in vocab order with u = splitmix64(seed) in [0, 1).
// Determinism: the top-p mass uses float atomics, so a draw right at a boundary may differ between
// runs. Tokens at -inf (grammar-masked) have zero mass and are never drawn, not even when rounding
// leaves the inverse-CDF walk short of its target.
// apply_token_bitmask: logits[rowIds[m], v] = -inf unless bit v % 32 of word v / 32 of mask m is set
// (xgrammar's packed int32 layout; tokens past the mask's words are disallowed). One thread per
// token, grid (ceil(V / 256), numMasked). NOT YET RUN ON A GPU.
// GB/s: not measured (one row is at most ~1 MB).
#include "common.cuh"
#include <math.h>

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  if (isnan(v)) return false;
  if (isnan(bv)) return true;
  return v > bv || (v == bv && i < bi);
}

__device__ void block_argmax(const float* row, int V, float* outV, int* outI) {
  __shared__ float sv[1024];
  __shared__ int si[1024];
  float bv = NAN;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = row[i];
    if (better(v, i, bv, bi)) { bv = v; bi = i; }
  }
  sv[threadIdx.x] = bv; si[threadIdx.x] = bi;
  __syncthreads();
  for (int st = blockDim.x / 2; st > 0; st >>= 1) {
    if (threadIdx.x < st && better(sv[threadIdx.x + st], si[threadIdx.x + st], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + st]; si[threadIdx.x] = si[threadIdx.x + st];
    }
    __syncthreads();
  }
  *outV = sv[0];
  *outI = si[0] == 0x7fffffff ? 0 : si[0];
  __syncthreads();
}

__global__ void argmax_kernel(int32_t* out, const float* logits, int V) {
  float v; int i;
  block_argmax(logits + (size_t)blockIdx.x * V, V, &v, &i);
  if (threadIdx.x == 0) out[blockIdx.x] = i;
}

extern "C" cudaError_t launch_argmax(int32_t* out, const float* logits, int rows, int vocab, cudaStream_t s) {
  if (rows <= 0) return cudaSuccess;
  argmax_kernel<<<rows, 512, 0, s>>>(out, logits, vocab);
  return cudaGetLastError();
}

__device__ __forceinline__ uint32_t fkey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float funkey(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Largest key K such that weight(keys >= K) >= target, where weight is a count (mass=false) or
// exp(x - mx) (mass=true). Only keys >= floorKey take part.
__device__ uint32_t radix_threshold(const float* row, int V, float target, bool mass, float mx, uint32_t floorKey) {
  __shared__ float hist[256];
  __shared__ uint32_t prefix_s;
  __shared__ float need_s;
  if (threadIdx.x == 0) { prefix_s = 0; need_s = target; }
  __syncthreads();
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0.f;
    __syncthreads();
    const uint32_t prefix = prefix_s;
    const uint32_t hiMask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      const uint32_t k = fkey(row[i]);
      if (k < floorKey || (k & hiMask) != (prefix & hiMask)) continue;
      atomicAdd(&hist[(k >> shift) & 255u], mass ? __expf(row[i] - mx) : 1.f);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float need = need_s, cum = 0.f;
      int d = 255;
      for (; d > 0; d--) {
        if (cum + hist[d] >= need) break;
        cum += hist[d];
      }
      need_s = need - cum;
      prefix_s = prefix | ((uint32_t)d << shift);
    }
    __syncthreads();
  }
  return prefix_s;
}

__device__ __forceinline__ float u01(uint32_t lo, uint32_t hi) {
  unsigned long long z = ((unsigned long long)hi << 32 | lo) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void __launch_bounds__(1024) sample_kernel(TmSampleArgs a) {
  const int r = blockIdx.x, V = a.vocab;
  const float* P = a.params + (size_t)r * 8;
  const float temp = P[0], topP = P[2], minP = P[3], rep = P[4], pres = P[5], freq = P[6];
  const int topK = (int)P[1];
  int32_t* cnt = a.counts + (size_t)r * V;
  float* row = a.scratch + (size_t)r * V;
  const float* lg = a.logits + (size_t)r * V;
  for (int i = threadIdx.x; i < V; i += blockDim.x) cnt[i] = 0;
  __syncthreads();
  const int hl = a.historyLens[r], ng = a.numGenerated[r];
  for (int i = threadIdx.x; i < hl; i += blockDim.x) {
    const int tok = a.history[(size_t)r * a.maxHistory + i];
    if (tok < 0 || tok >= V) continue;
    atomicOr(&cnt[tok], 1 << 30);
    if (i >= hl - ng) atomicAdd(&cnt[tok], 1);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    float x = lg[i];
    const int c = cnt[i];
    if (c != 0) {
      if (rep != 1.f) x = x > 0.f ? x / rep : x * rep;
      const int gc = c & ((1 << 30) - 1);
      x -= freq * (float)gc + (gc > 0 ? pres : 0.f);
    }
    row[i] = temp > 0.f ? x / temp : x;
  }
  __syncthreads();
  float mx; int mi;
  block_argmax(row, V, &mx, &mi);
  if (!(temp > 0.f) || isnan(mx)) {
    if (threadIdx.x == 0) a.out[r] = mi;
    return;
  }
  uint32_t floorKey = 0;
  if (topK > 0 && topK < V) floorKey = radix_threshold(row, V, (float)topK, false, mx, 0);
  if (minP > 0.f) floorKey = max(floorKey, fkey(mx + logf(minP)));
  // Mass of the kept set so far.
  float z = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) if (fkey(row[i]) >= floorKey) z += __expf(row[i] - mx);
  z = block_sum(z);
  if (topP < 1.f && topP > 0.f) floorKey = max(floorKey, radix_threshold(row, V, topP * z, true, mx, floorKey));
  // Inverse CDF in vocab order over kept tokens.
  const int per = (V + blockDim.x - 1) / blockDim.x;
  const int b0 = threadIdx.x * per, b1 = min(V, b0 + per);
  float mine = 0.f;
  for (int i = b0; i < b1; i++) if (fkey(row[i]) >= floorKey) mine += __expf(row[i] - mx);
  __shared__ float part[1024];
  __shared__ float total_s;
  part[threadIdx.x] = mine;
  __syncthreads();
  if (threadIdx.x == 0) {
    float c = 0.f;
    for (int i = 0; i < (int)blockDim.x; i++) { const float v = part[i]; part[i] = c; c += v; }
    total_s = c;
  }
  __syncthreads();
  const float target = u01(a.seeds[2 * r], a.seeds[2 * r + 1]) * total_s;
  __shared__ int pick;
  if (threadIdx.x == 0) pick = mi;
  __syncthreads();
  float c = part[threadIdx.x];
  if (target >= c && target < c + mine) {
    int last = -1;
    for (int i = b0; i < b1; i++) {
      if (fkey(row[i]) < floorKey || !(row[i] > -INFINITY)) continue;
      last = i;
      c += __expf(row[i] - mx);
      if (c > target) break;
    }
    if (last >= 0) pick = last;
  }
  __syncthreads();
  if (threadIdx.x == 0) a.out[r] = pick;
}

extern "C" cudaError_t launch_sample(const TmSampleArgs* a, cudaStream_t s) {
  if (a->rows <= 0) return cudaSuccess;
  sample_kernel<<<a->rows, 1024, 0, s>>>(*a);
  return cudaGetLastError();
}

__global__ void apply_token_bitmask_kernel(float* logits, const int32_t* packed, int numMasked, int V, int words) {
  const int m = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= V) return;
  const int row = packed[m];
  const int w = i >> 5;
  const uint32_t bits = w < words ? (uint32_t)packed[numMasked + (size_t)m * words + w] : 0u;
  if (((bits >> (i & 31)) & 1u) == 0u) logits[(size_t)row * V + i] = -INFINITY;
}

extern "C" cudaError_t launch_apply_token_bitmask(float* logits, const int32_t* packed, int numMasked, int vocab, int words, cudaStream_t s) {
  if (numMasked <= 0 || vocab <= 0) return cudaSuccess;
  if (numMasked > 65535 || words <= 0) return cudaErrorInvalidValue;
  const dim3 grid((unsigned)((vocab + 255) / 256), (unsigned)numMasked);
  apply_token_bitmask_kernel<<<grid, 256, 0, s>>>(logits, packed, numMasked, vocab, words);
  return cudaGetLastError();
}
