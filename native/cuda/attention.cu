// Paged causal GQA attention over the KV cache (which already holds this step's keys).
// Math: out[t,h] = softmax(scale * q[t,h] . K^T) V over key positions lo..pos of t's sequence, where
// pos = seqLen - qLen + j (j-th new token) and lo = 0, or pos - W + 1 with a sliding window W.
// f32 scores, online softmax (running max m, sum l), f32 accumulators, one rounding at the end.
// Layout: q, out [T, H, Dh]; caches [numBlocks, blockSize, Hkv, Dh]; key p of sequence s sits in
// slot blockTables[s, p / blockSize] * blockSize + p % blockSize. Head h reads kv head h / (H/Hkv).
// Two kernels:
//  (a) split (flash-decoding), used when maxQueryLen <= 8 or Dh > 128: grid (T, Hkv x head-chunks,
//      splits); 4 warps; a block serves one token and up to 8 query heads sharing a kv head, so each
//      K/V row is read once for the group. Scores: one key per lane (K row read with 16-byte loads),
//      PV: lanes own Dh/32 dims. With few blocks the key range is split across blocks and a combine
//      kernel merges (m, l, acc) partials from the workspace. Under graph capture (dynamicSplits) the
//      split count is planned from maxSeqLen = the cache capacity and each block takes its share of
//      its token's actual key range, so short sequences keep their parallelism in a fixed grid.
//  (b) prefill tile (flash-attention style), used otherwise: grid (query tiles of 32, seqs, H); a
//      K/V tile of 32 keys is staged in shared memory (f32) once for 32 queries (8 per warp).
// Assumptions: Dh <= 256 (split) / <= 128 (tile); H % Hkv == 0; checked by the launcher.
// Measured decode, bf16, H100 SXM (bench/gpu/kernel-bench.ts, commit a11997d; bytes = K+V read):
// ctx 384 MHA 32x128 32 us (197 GB/s), ctx 4096 MHA 148 us (452 GB/s), ctx 4096 GQA 32/8 37 us
// (449 GB/s), ctx 32768 GQA 261 us (514 GB/s): latency-bound, far from the 3 TB/s roofline.
#include "common.cuh"
#include <math.h>

#define ATT_WARPS 4
#define GMAX 8

__device__ __forceinline__ int find_seq(const int32_t* qsl, int numSeqs, int t) {
  int lo = 0, hi = numSeqs - 1;
  while (lo < hi) {  // last s with qsl[s] <= t
    const int mid = (lo + hi + 1) >> 1;
    if (qsl[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ long long kv_row(const int32_t* bt, int maxBlocks, int s, int p, int blockSize, int Hkv,
                                            int kvh, long long numBlocks) {
  long long b = bt[(size_t)s * maxBlocks + p / blockSize];
  if (b < 0 || b >= numBlocks) b = 0;  // garbage table entry: read block 0 rather than fault
  return ((b * blockSize + p % blockSize) * Hkv + kvh);
}

// ---------------------------------------------------------------------------------------------- (a)
template <typename T, int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32) attn_split_kernel(TmAttnArgs a, int numSplits, int chunk, int headChunks) {
  constexpr int DMAX = DPL * 32;
  __shared__ float q_s[GMAX][DMAX];
  __shared__ float m_w[ATT_WARPS][GMAX], l_w[ATT_WARPS][GMAX];
  __shared__ float acc_w[ATT_WARPS][GMAX][DMAX];
  const int t = blockIdx.x, split = blockIdx.z;
  const int kvh = blockIdx.y / headChunks, hc = blockIdx.y % headChunks;
  const int G = a.numHeads / a.numKvHeads, Dh = a.headDim;
  const int g0 = kvh * G + hc * GMAX, ng = min(GMAX, G - hc * GMAX);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int s = find_seq(a.queryStartLoc, a.numSeqs, t);
  const int qLen = a.queryStartLoc[s + 1] - a.queryStartLoc[s];
  const int pos = a.seqLens[s] - qLen + (t - a.queryStartLoc[s]);
  int lo = a.slidingWindow > 0 ? max(0, pos - a.slidingWindow + 1) : 0;
  int hi = pos + 1;
  if (chunk > 0) {
    lo = max(lo, split * chunk);
    hi = min(hi, (split + 1) * chunk);
  } else {  // dynamic: this token's own key range in numSplits parts of whole warps (32 keys)
    const int part = (((hi - lo) + numSplits - 1) / numSplits + 31) & ~31;
    lo = lo + split * part;
    hi = min(hi, lo + part);
  }
  const T* q = (const T*)a.q;
  for (int i = threadIdx.x; i < GMAX * DMAX; i += blockDim.x) {
    const int g = i / DMAX, d = i % DMAX;
    q_s[g][d] = (g < ng && d < Dh) ? to_f(q[((size_t)t * a.numHeads + g0 + g) * Dh + d]) * a.scale : 0.f;
  }
  __syncthreads();
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;
  float m[GMAX], l[GMAX], acc[GMAX][DPL];
#pragma unroll
  for (int g = 0; g < GMAX; g++) {
    m[g] = -INFINITY; l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[g][i] = 0.f;
  }
  const bool vec = (Dh % 8) == 0;
  for (int base = lo + warp * 32; base < hi; base += ATT_WARPS * 32) {
    const int p = base + lane;
    const bool valid = p < hi;
    float sc[GMAX];
#pragma unroll
    for (int g = 0; g < GMAX; g++) sc[g] = 0.f;
    if (valid) {
      const T* kr = kc + kv_row(a.blockTables, a.maxBlocksPerSeq, s, p, a.blockSize, a.numKvHeads, kvh, a.numCacheBlocks) * Dh;
      if (vec) {
        for (int d = 0; d < Dh; d += 8) {
          float kv[8];
          Vec8<T>::load(kr + d, kv);
#pragma unroll
          for (int g = 0; g < GMAX; g++)
            if (g < ng) {
#pragma unroll
              for (int e = 0; e < 8; e++) sc[g] = fmaf(q_s[g][d + e], kv[e], sc[g]);
            }
        }
      } else {
        for (int d = 0; d < Dh; d++) {
          const float kv = to_f(kr[d]);
#pragma unroll
          for (int g = 0; g < GMAX; g++) if (g < ng) sc[g] = fmaf(q_s[g][d], kv, sc[g]);
        }
      }
    }
    float pr[GMAX];
#pragma unroll
    for (int g = 0; g < GMAX; g++) {
      if (g >= ng) { pr[g] = 0.f; continue; }
      const float sv = valid ? sc[g] : -INFINITY;
      const float mn = fmaxf(m[g], warp_max(sv));
      const float alpha = (m[g] == -INFINITY) ? 0.f : __expf(m[g] - mn);
      pr[g] = valid ? __expf(sv - mn) : 0.f;
      l[g] = l[g] * alpha + warp_sum(pr[g]);
      m[g] = mn;
#pragma unroll
      for (int i = 0; i < DPL; i++) acc[g][i] *= alpha;
    }
    const int nk = min(32, hi - base);
    for (int jj = 0; jj < nk; jj++) {
      const T* vr = vc + kv_row(a.blockTables, a.maxBlocksPerSeq, s, base + jj, a.blockSize, a.numKvHeads, kvh, a.numCacheBlocks) * Dh;
      float vv[DPL];
#pragma unroll
      for (int i = 0; i < DPL; i++) { const int d = lane + 32 * i; vv[i] = d < Dh ? to_f(vr[d]) : 0.f; }
#pragma unroll
      for (int g = 0; g < GMAX; g++) {
        if (g >= ng) continue;
        const float pj = __shfl_sync(0xffffffffu, pr[g], jj);
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[g][i] = fmaf(pj, vv[i], acc[g][i]);
      }
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < GMAX; g++) { m_w[warp][g] = m[g]; l_w[warp][g] = l[g]; }
  }
#pragma unroll
  for (int g = 0; g < GMAX; g++)
#pragma unroll
    for (int i = 0; i < DPL; i++) acc_w[warp][g][lane + 32 * i] = acc[g][i];
  __syncthreads();
  for (int i = threadIdx.x; i < ng * Dh; i += blockDim.x) {
    const int g = i / Dh, d = i % Dh;
    float M = -INFINITY;
    for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, m_w[w][g]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < ATT_WARPS; w++) {
        const float f = m_w[w][g] == -INFINITY ? 0.f : __expf(m_w[w][g] - M);
        L += l_w[w][g] * f;
        A += acc_w[w][g][d] * f;
      }
    }
    const int h = g0 + g;
    if (numSplits == 1) {
      ((T*)a.out)[((size_t)t * a.numHeads + h) * Dh + d] = from_f<T>(L > 0.f ? A / L : 0.f);
    } else {
      const size_t pidx = ((size_t)t * a.numHeads + h) * numSplits + split;
      float* wsAcc = a.workspace;
      float* wsM = a.workspace + (size_t)a.numTokens * a.numHeads * numSplits * Dh;
      float* wsL = wsM + (size_t)a.numTokens * a.numHeads * numSplits;
      wsAcc[pidx * Dh + d] = A;
      if (d == 0) { wsM[pidx] = M; wsL[pidx] = L; }
    }
  }
}

template <typename T>
__global__ void attn_combine_kernel(TmAttnArgs a, int numSplits) {
  const int t = blockIdx.x, h = blockIdx.y, Dh = a.headDim;
  const float* wsAcc = a.workspace;
  const float* wsM = a.workspace + (size_t)a.numTokens * a.numHeads * numSplits * Dh;
  const float* wsL = wsM + (size_t)a.numTokens * a.numHeads * numSplits;
  const size_t p0 = ((size_t)t * a.numHeads + h) * numSplits;
  float M = -INFINITY;
  for (int sp = 0; sp < numSplits; sp++) M = fmaxf(M, wsM[p0 + sp]);
  for (int d = threadIdx.x; d < Dh; d += blockDim.x) {
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int sp = 0; sp < numSplits; sp++) {
        const float mm = wsM[p0 + sp];
        if (mm == -INFINITY) continue;
        const float f = __expf(mm - M);
        L += wsL[p0 + sp] * f;
        A += wsAcc[(p0 + sp) * Dh + d] * f;
      }
    }
    ((T*)a.out)[((size_t)t * a.numHeads + h) * Dh + d] = from_f<T>(L > 0.f ? A / L : 0.f);
  }
}

// ---------------------------------------------------------------------------------------------- (b)
#define PQ 32   // queries per block
#define PK 32   // keys per tile
template <typename T, int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32) attn_prefill_kernel(TmAttnArgs a) {
  constexpr int DMAX = DPL * 32, QPW = PQ / ATT_WARPS;
  extern __shared__ float smem[];
  float* q_s = smem;                        // [PQ][DMAX]
  float* k_s = q_s + PQ * DMAX;             // [PK][DMAX + 1]
  float* v_s = k_s + PK * (DMAX + 1);       // [PK][DMAX]
  const int s = blockIdx.y, h = blockIdx.z, Dh = a.headDim;
  const int kvh = h / (a.numHeads / a.numKvHeads);
  const int qs = a.queryStartLoc[s], qLen = a.queryStartLoc[s + 1] - qs;
  const int q0 = blockIdx.x * PQ;
  if (q0 >= qLen) return;
  const int nq = min(PQ, qLen - q0);
  const int ctx0 = a.seqLens[s] - qLen;  // position of new token 0
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T* q = (const T*)a.q;
  for (int i = threadIdx.x; i < PQ * DMAX; i += blockDim.x) {
    const int r = i / DMAX, d = i % DMAX;
    q_s[i] = (r < nq && d < Dh) ? to_f(q[((size_t)(qs + q0 + r) * a.numHeads + h) * Dh + d]) * a.scale : 0.f;
  }
  const int posFirst = ctx0 + q0, posLast = ctx0 + q0 + nq - 1;
  const int kLo = a.slidingWindow > 0 ? max(0, posFirst - a.slidingWindow + 1) : 0;
  float m[QPW], l[QPW], acc[QPW][DPL];
#pragma unroll
  for (int i = 0; i < QPW; i++) {
    m[i] = -INFINITY; l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[i][j] = 0.f;
  }
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;
  for (int k0 = kLo; k0 <= posLast; k0 += PK) {
    __syncthreads();
    for (int i = threadIdx.x; i < PK * Dh; i += blockDim.x) {
      const int r = i / Dh, d = i % Dh, p = k0 + r;
      float kv = 0.f, vv = 0.f;
      if (p <= posLast) {
        const long long row = kv_row(a.blockTables, a.maxBlocksPerSeq, s, p, a.blockSize, a.numKvHeads, kvh, a.numCacheBlocks);
        kv = to_f(kc[row * Dh + d]);
        vv = to_f(vc[row * Dh + d]);
      }
      k_s[r * (DMAX + 1) + d] = kv;
      v_s[r * DMAX + d] = vv;
    }
    __syncthreads();
    const int p = k0 + lane;
    float pr[QPW];
#pragma unroll
    for (int i = 0; i < QPW; i++) {
      const int qi = warp * QPW + i;
      const int qpos = posFirst + qi;
      const bool ok = qi < nq && p <= qpos && (a.slidingWindow <= 0 || p > qpos - a.slidingWindow);
      float sc = -INFINITY;
      if (ok) {
        sc = 0.f;
        const float* qr = q_s + qi * DMAX;
        const float* kr = k_s + lane * (DMAX + 1);
        for (int d = 0; d < Dh; d++) sc = fmaf(qr[d], kr[d], sc);
      }
      const float mn = fmaxf(m[i], warp_max(sc));
      if (mn == -INFINITY) { pr[i] = 0.f; continue; }
      const float alpha = m[i] == -INFINITY ? 0.f : __expf(m[i] - mn);
      pr[i] = ok ? __expf(sc - mn) : 0.f;
      l[i] = l[i] * alpha + warp_sum(pr[i]);
      m[i] = mn;
#pragma unroll
      for (int j = 0; j < DPL; j++) acc[i][j] *= alpha;
    }
    const int nk = min(PK, posLast - k0 + 1);
    for (int jj = 0; jj < nk; jj++) {
      float vv[DPL];
#pragma unroll
      for (int j = 0; j < DPL; j++) vv[j] = v_s[jj * DMAX + lane + 32 * j];
#pragma unroll
      for (int i = 0; i < QPW; i++) {
        const float pj = __shfl_sync(0xffffffffu, pr[i], jj);
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[i][j] = fmaf(pj, vv[j], acc[i][j]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < QPW; i++) {
    const int qi = warp * QPW + i;
    if (qi >= nq) continue;
    T* o = (T*)a.out + ((size_t)(qs + q0 + qi) * a.numHeads + h) * Dh;
#pragma unroll
    for (int j = 0; j < DPL; j++) {
      const int d = lane + 32 * j;
      if (d < Dh) o[d] = from_f<T>(l[i] > 0.f ? acc[i][j] / l[i] : 0.f);
    }
  }
}

// ---------------------------------------------------------------------------------------- launchers
static void plan_splits(const TmAttnArgs* a, int* numSplits, int* chunk) {
  const int G = a->numHeads / a->numKvHeads;
  const long long base = (long long)a->numTokens * a->numKvHeads * ((G + GMAX - 1) / GMAX);
  int ns = 1;
  if (base < a->numSms && a->maxSeqLen > 64) {  // too few blocks to fill the GPU: split the keys
    ns = (int)min((long long)(a->maxSeqLen + 63) / 64, (2LL * a->numSms + base - 1) / base);
  }
  int ch = ((a->maxSeqLen + ns - 1) / ns + 63) / 64 * 64;
  if (ch < 64) ch = 64;
  ns = (a->maxSeqLen + ch - 1) / ch;
  if (ns < 1) ns = 1;
  *numSplits = ns;
  *chunk = ch;
}

static size_t split_bytes(const TmAttnArgs* a, int ns) {
  return ns <= 1 ? 0 : (size_t)a->numTokens * a->numHeads * ns * (a->headDim + 2) * sizeof(float);
}

extern "C" size_t attention_workspace_bytes(const TmAttnArgs* a) {
  int ns, ch;
  plan_splits(a, &ns, &ch);
  return split_bytes(a, ns);
}

template <typename T, int DPL>
static cudaError_t run_split(const TmAttnArgs* a, cudaStream_t s) {
  int ns, ch;
  plan_splits(a, &ns, &ch);
  if (split_bytes(a, ns) > a->workspaceBytes || a->workspace == nullptr) {
    ns = 1;
    ch = a->maxSeqLen > 0 ? a->maxSeqLen : 1;
  }
  if (a->dynamicSplits) ch = 0;  // ranges from the device-side seqLens (see attn_split_kernel)
  const int G = a->numHeads / a->numKvHeads, hcs = (G + GMAX - 1) / GMAX;
  dim3 grid(a->numTokens, a->numKvHeads * hcs, ns);
  attn_split_kernel<T, DPL><<<grid, ATT_WARPS * 32, 0, s>>>(*a, ns, ch, hcs);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || ns == 1) return e;
  attn_combine_kernel<T><<<dim3(a->numTokens, a->numHeads), 128, 0, s>>>(*a, ns);
  return cudaGetLastError();
}

template <typename T, int DPL>
static cudaError_t run_prefill(const TmAttnArgs* a, cudaStream_t s) {
  constexpr int DMAX = DPL * 32;
  const size_t smem = (size_t)(PQ * DMAX + PK * (DMAX + 1) + PK * DMAX) * sizeof(float);
  static bool attrSet = false;  // per template instance; the attribute is per-function, per-device
  if (!attrSet) {
    cudaError_t e = cudaFuncSetAttribute(attn_prefill_kernel<T, DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return e;
    attrSet = true;
  }
  dim3 grid((a->maxQueryLen + PQ - 1) / PQ, a->numSeqs, a->numHeads);
  attn_prefill_kernel<T, DPL><<<grid, ATT_WARPS * 32, smem, s>>>(*a);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t dispatch(const TmAttnArgs* a, cudaStream_t s) {
  const int dpl = (a->headDim + 31) / 32;
  if (a->maxQueryLen > 8 && dpl <= 4) {
    if (dpl == 1) return run_prefill<T, 1>(a, s);
    if (dpl == 2) return run_prefill<T, 2>(a, s);
    return run_prefill<T, 4>(a, s);
  }
  if (dpl == 1) return run_split<T, 1>(a, s);
  if (dpl == 2) return run_split<T, 2>(a, s);
  if (dpl <= 4) return run_split<T, 4>(a, s);
  return run_split<T, 8>(a, s);
}

extern "C" cudaError_t launch_attention(const TmAttnArgs* a, cudaStream_t s) {
  if (a->numTokens <= 0) return cudaSuccess;
  if (a->headDim <= 0 || a->headDim > 256 || a->numKvHeads <= 0 || a->numHeads % a->numKvHeads != 0 ||
      a->numSeqs <= 0 || a->blockSize <= 0)
    return cudaErrorInvalidValue;
  TM_DISPATCH_FLOAT(a->dt, T, return dispatch<T>(a, s));
}
