// Weight-only matmul on ggml blocks (Backend.matmulGgml) and the row decoder behind embeddingGgml;
// spec: src/runtime/reference/ops-ggml.ts (the CPU twin: native/cpu/matmul_ggml.cpp).
// (1) quantize_act: x [T, K] (f32/f16/bf16) -> codes xq [T, K] int8, scales xd [T, K/32] f32 and code
//     sums xs [T, K/32] i32, the spec's rounding (dx = amax / 127, id = 1 / dx, rne(x * id), IEEE ops).
// (2) gemv_ggml<TYPE, NT>: one warp per output row n, NT tokens per block (grid.y tiles T). Lane l
//     takes the 32-weight groups l, l + 32, ...: decodes one group in registers (ggml_decode.cuh),
//     exact integer dot products with dp4a per 16-weight half, then in f32 av += (dx sLo) lo +
//     (dx sHi) hi and am += dx (m sx) (the CPU kernel's two accumulators), one shuffle reduction each.
//     Decode (T <= 8) runs it with NT = T rounded up to 1/2/4/8; the batched path (prefill, T > 8) is
//     the same kernel with NT = 16 over grid.y = ceil(T / 16): each block re-decodes its rows' weights
//     (L2-resident across the token tiles) -- the simplest correct batched path, no tensor cores, no
//     float dequantized copy of the weight. The f32 steps are explicit __fmul_rn/__fmaf_rn, so every
//     instantiation does the same operations in the same order per (t, n): results do not depend on
//     T or the tile (batch invariant, as the spec asks). Needs K % 32 == 0 and 2-byte aligned rows.
// (3) embedding_ggml: out[t, :] = the decoded row ids[t], bit-exact with ggml-dequant.ts.
// NOT YET RUN ON A GPU: compiled only (no device in the session that wrote it); CudaBackend exposes it
// only with the ggmlKernels option (off by default) until the GPU suite's conformance stage passes.
#include "ggml_decode.cuh"

#define GG_WARPS 8
#define GG_BATCH_NT 16

template <typename TX>
__global__ void __launch_bounds__(256) quantize_act_kernel(int8_t* xq, float* xd, int32_t* xs, const TX* x, int T, int K) {
  const int G = K / 32;
  const long long group = (long long)blockIdx.x * 8 + (threadIdx.x >> 5);
  if (group >= (long long)T * G) return;  // whole warps exit together (8 groups per block)
  const int lane = threadIdx.x & 31;
  const size_t i = (size_t)group * 32 + lane;  // row-major [T, K] with K % 32 == 0: group g of row t is contiguous
  const float v = to_f(x[i]);
  const float amax = warp_max(fabsf(v));
  const float dx = __fdiv_rn(amax, 127.f);
  const float id = dx != 0.f ? __frcp_rn(dx) : 0.f;
  float q = rintf(__fmul_rn(v, id));  // round half to even
  q = q > 127.f ? 127.f : q < -127.f ? -127.f : q;
  const int qi = (int)q;
  xq[i] = (int8_t)qi;
  int sum = qi;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) {
    xd[group] = dx;
    xs[group] = sum;
  }
}

template <int TYPE, int NT>
__global__ void __launch_bounds__(GG_WARPS * 32)
gemv_ggml_kernel(void* out, int dtOut, const int8_t* xq, const float* xd, const int32_t* xs, const uint8_t* w, size_t rowBytes,
                 const void* bias, int dtBias, int T, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * GG_WARPS + (threadIdx.x >> 5);
  if (n >= N) return;
  const int t0 = blockIdx.y * NT;
  const int nt = T - t0 < NT ? T - t0 : NT;
  const int G = K / 32;
  const uint8_t* row = w + (size_t)n * rowBytes;
  float av[NT], am[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) av[t] = am[t] = 0.f;
  for (int gi = lane; gi < G; gi += 32) {
    GgmlGroup g;
    ggml_group<TYPE>(row, gi, g);
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t < nt) {
        const size_t r = (size_t)(t0 + t);
        const int4* q = reinterpret_cast<const int4*>(xq + r * K + (size_t)gi * 32);
        const int4 a = q[0], b = q[1];
        int lo = __dp4a(g.c[0], a.x, 0);
        lo = __dp4a(g.c[1], a.y, lo);
        lo = __dp4a(g.c[2], a.z, lo);
        lo = __dp4a(g.c[3], a.w, lo);
        int hi = __dp4a(g.c[4], b.x, 0);
        hi = __dp4a(g.c[5], b.y, hi);
        hi = __dp4a(g.c[6], b.z, hi);
        hi = __dp4a(g.c[7], b.w, hi);
        const float dx = xd[r * G + gi];
        av[t] = __fmaf_rn(__fmul_rn(dx, g.sLo), (float)lo, av[t]);
        av[t] = __fmaf_rn(__fmul_rn(dx, g.sHi), (float)hi, av[t]);
        if (GgmlFormat<TYPE>::min) am[t] = __fmaf_rn(dx, __fmul_rn(g.m, (float)xs[r * G + gi]), am[t]);
      }
    }
  }
  const float b = bias ? ld_any(bias, dtBias, n) : 0.f;
#pragma unroll
  for (int t = 0; t < NT; t++) {
    const float v = __fadd_rn(warp_sum(av[t]), warp_sum(am[t]));
    if (lane == 0 && t < nt) st_any(out, dtOut, (size_t)(t0 + t) * N + n, bias ? __fadd_rn(v, b) : v);
  }
}

// One thread per 32-weight group of the output rows; values rounded as ggml-dequant.ts rounds them.
template <int TYPE>
__global__ void embedding_ggml_kernel(void* out, int dtOut, const uint8_t* w, size_t rowBytes, const int32_t* ids, int T, int V, int K) {
  const int G = K / 32;
  const size_t total = (size_t)T * G;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const int t = (int)(i / G), gi = (int)(i % G);
    const int id = ids[t];
    const size_t o = (size_t)t * K + (size_t)gi * 32;
    if (id < 0 || id >= V) {  // out-of-range ids give zero rows, as launch_gather_rows does
      for (int e = 0; e < 32; e++) st_any(out, dtOut, o + e, 0.f);
      continue;
    }
    GgmlGroup g;
    ggml_group<TYPE>(w + (size_t)id * rowBytes, gi, g);
#pragma unroll
    for (int e = 0; e < 32; e++) {
      const float s = e < 16 ? g.sLo : g.sHi;
      const float v = __fmul_rn((float)ggml_code(g.c[e >> 2], e & 3), s);
      st_any(out, dtOut, o + e, GgmlFormat<TYPE>::min ? __fadd_rn(v, g.m) : v);
    }
  }
}

template <int TYPE>
static cudaError_t run_gemv_ggml(void* out, int dtOut, const int8_t* xq, const float* xd, const int32_t* xs, const uint8_t* w,
                                 size_t rowBytes, const void* bias, int dtBias, int T, int N, int K, cudaStream_t s) {
  const unsigned gx = tm_cdiv(N, GG_WARPS);
#define GG_LAUNCH(NT_)                                                           \
  gemv_ggml_kernel<TYPE, NT_><<<dim3(gx, tm_cdiv(T, NT_)), GG_WARPS * 32, 0, s>>>( \
      out, dtOut, xq, xd, xs, w, rowBytes, bias, dtBias, T, N, K)
  if (T == 1) GG_LAUNCH(1);
  else if (T == 2) GG_LAUNCH(2);
  else if (T <= 4) GG_LAUNCH(4);
  else if (T <= 8) GG_LAUNCH(8);
  else GG_LAUNCH(GG_BATCH_NT);
#undef GG_LAUNCH
  return cudaGetLastError();
}

template <int TYPE>
static cudaError_t run_embedding_ggml(void* out, int dtOut, const uint8_t* w, size_t rowBytes, const int32_t* ids, int T, int V, int K,
                                      cudaStream_t s) {
  const size_t total = (size_t)T * (K / 32);
  const unsigned grid = (unsigned)(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
  embedding_ggml_kernel<TYPE><<<grid, 256, 0, s>>>(out, dtOut, w, rowBytes, ids, T, V, K);
  return cudaGetLastError();
}

#define GG_DISPATCH_TYPE(type, FN, ...)                             \
  switch (type) {                                                   \
    case TM_Q4_0: return FN<TM_Q4_0>(__VA_ARGS__);                  \
    case TM_Q4_1: return FN<TM_Q4_1>(__VA_ARGS__);                  \
    case TM_Q5_0: return FN<TM_Q5_0>(__VA_ARGS__);                  \
    case TM_Q5_1: return FN<TM_Q5_1>(__VA_ARGS__);                  \
    case TM_Q8_0: return FN<TM_Q8_0>(__VA_ARGS__);                  \
    case TM_Q4_K: return FN<TM_Q4_K>(__VA_ARGS__);                  \
    case TM_Q5_K: return FN<TM_Q5_K>(__VA_ARGS__);                  \
    case TM_Q6_K: return FN<TM_Q6_K>(__VA_ARGS__);                  \
    default: return cudaErrorInvalidValue;                          \
  }

static int ggml_block_elems(int type) { return type >= TM_Q4_K ? 256 : 32; }
static int ggml_block_bytes(int type) {
  switch (type) {
    case TM_Q4_0: return 18; case TM_Q4_1: return 20; case TM_Q5_0: return 22; case TM_Q5_1: return 24; case TM_Q8_0: return 34;
    case TM_Q4_K: return 144; case TM_Q5_K: return 176; case TM_Q6_K: return 210; default: return 0;
  }
}
// The row length and byte count must describe whole blocks; rows must be 2-byte aligned (16-bit loads).
static bool ggml_shape_ok(int type, const void* w, long long rowBytes, int K) {
  const int be = ggml_block_elems(type), bb = ggml_block_bytes(type);
  return bb != 0 && K > 0 && K % be == 0 && rowBytes == (long long)(K / be) * bb && (uintptr_t)w % 2 == 0;
}

extern "C" size_t ggml_act_scratch_bytes(int T, int K) { return (size_t)T * K + (size_t)T * (K / 32) * 8 + 64; }

extern "C" int gemv_ggml_max_tokens(void) { return 8; }

extern "C" cudaError_t launch_matmul_ggml(void* out, int dtOut, const void* x, int dtX, const uint8_t* w, int type, long long rowBytes,
                                          const void* bias, int dtBias, int T, int N, int K, void* scratch, size_t scratchBytes,
                                          cudaStream_t s) {
  if (T <= 0 || N <= 0) return cudaSuccess;
  if (!ggml_shape_ok(type, w, rowBytes, K) || scratchBytes < ggml_act_scratch_bytes(T, K) || (uintptr_t)scratch % 16 != 0)
    return cudaErrorInvalidValue;
  // Scratch layout: xq [T, K] int8 (16-byte aligned rows: K % 32 == 0), then xd [T, K/32] f32, xs [T, K/32] i32.
  int8_t* xq = (int8_t*)scratch;
  const size_t groups = (size_t)T * (K / 32);
  float* xd = (float*)((char*)scratch + (((size_t)T * K + 15) & ~(size_t)15));
  int32_t* xs = (int32_t*)(xd + groups);
  const unsigned qgrid = tm_cdiv(groups, 8);
  TM_DISPATCH_FLOAT(dtX, T_, quantize_act_kernel<T_><<<qgrid, 256, 0, s>>>(xq, xd, xs, (const T_*)x, T, K));
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  GG_DISPATCH_TYPE(type, run_gemv_ggml, out, dtOut, xq, xd, xs, w, (size_t)rowBytes, bias, dtBias, T, N, K, s);
}

extern "C" cudaError_t launch_embedding_ggml(void* out, int dtOut, const uint8_t* w, int type, long long rowBytes, const int32_t* ids,
                                             int T, int V, int K, cudaStream_t s) {
  if (T <= 0) return cudaSuccess;
  if (!ggml_shape_ok(type, w, rowBytes, K)) return cudaErrorInvalidValue;
  GG_DISPATCH_TYPE(type, run_embedding_ggml, out, dtOut, w, (size_t)rowBytes, ids, T, V, K, s);
}
