// ggml block decoding on the device (gemm_ggml.cu): one 32-weight group of a row -> its integer
// codes packed four to a 32-bit word (element order, offsets folded in) and the f32 scales of its two
// 16-weight halves plus its min, exactly as src/runtime/reference/ops-ggml.ts ggmlGroup defines them
// (the spec; the CPU twin is native/cpu/ggml_blocks.h). Weight value = code * s (+ m for Q4_1, Q5_1,
// Q4_K, Q5_K). Layouts (little-endian, f16 d/dmin/m): src/runtime/reference/ggml-dequant.ts.
// Every block size is even but some are not a multiple of 4 (Q4_0 18, Q5_0 22, Q8_0 34, Q6_K 210), so
// words are read as two 16-bit loads: rows only need 2-byte alignment. The f32 products that make a
// scale use __fmul_rn so nvcc cannot contract them into a later FMA (the spec rounds each step).
#pragma once
#include "common.cuh"

enum TmGgmlType { TM_Q4_0 = 2, TM_Q4_1 = 3, TM_Q5_0 = 6, TM_Q5_1 = 7, TM_Q8_0 = 8, TM_Q4_K = 12, TM_Q5_K = 13, TM_Q6_K = 14 };

template <int TYPE> struct GgmlFormat;
template <> struct GgmlFormat<TM_Q4_0> { static constexpr int elems = 32, bytes = 18; static constexpr bool min = false; };
template <> struct GgmlFormat<TM_Q4_1> { static constexpr int elems = 32, bytes = 20; static constexpr bool min = true; };
template <> struct GgmlFormat<TM_Q5_0> { static constexpr int elems = 32, bytes = 22; static constexpr bool min = false; };
template <> struct GgmlFormat<TM_Q5_1> { static constexpr int elems = 32, bytes = 24; static constexpr bool min = true; };
template <> struct GgmlFormat<TM_Q8_0> { static constexpr int elems = 32, bytes = 34; static constexpr bool min = false; };
template <> struct GgmlFormat<TM_Q4_K> { static constexpr int elems = 256, bytes = 144; static constexpr bool min = true; };
template <> struct GgmlFormat<TM_Q5_K> { static constexpr int elems = 256, bytes = 176; static constexpr bool min = true; };
template <> struct GgmlFormat<TM_Q6_K> { static constexpr int elems = 256, bytes = 210; static constexpr bool min = false; };

__device__ __forceinline__ uint32_t ggml_u16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
__device__ __forceinline__ uint32_t ggml_u32(const uint8_t* p) { return ggml_u16(p) | (ggml_u16(p + 2) << 16); }
__device__ __forceinline__ float ggml_f16(const uint8_t* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
}
// Bits 0..3 of h to bit 4 of bytes 0..3 (the fifth bit of four Q5_0 / Q5_1 codes).
__device__ __forceinline__ uint32_t ggml_spread4(uint32_t h) {
  return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}
// The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at q (Q4_K, Q5_K).
__device__ __forceinline__ void ggml_k_scale_min(const uint8_t* q, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

struct GgmlGroup {
  int c[8];  // 32 int8 codes, four per word, element order
  float sLo, sHi, m;
};

// Group gi (0 .. K/32 - 1) of the row starting at `row`.
template <int TYPE> __device__ __forceinline__ void ggml_group(const uint8_t* row, int gi, GgmlGroup& g) {
  typedef GgmlFormat<TYPE> F;
  constexpr int gpb = F::elems / 32;
  const uint8_t* b = row + (size_t)(gi / gpb) * F::bytes;
  const int j = gi % gpb;
  if constexpr (TYPE == TM_Q8_0) {
#pragma unroll
    for (int i = 0; i < 8; i++) g.c[i] = (int)ggml_u32(b + 2 + 4 * i);
    g.sLo = g.sHi = ggml_f16(b);
    g.m = 0.f;
  } else if constexpr (TYPE == TM_Q4_0 || TYPE == TM_Q4_1) {
    constexpr bool one = TYPE == TM_Q4_1;
    const uint8_t* qs = b + (one ? 4 : 2);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const uint32_t w = ggml_u32(qs + 4 * i);
      const uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
      g.c[i] = (int)(one ? lo : __vsub4(lo, 0x08080808u));
      g.c[i + 4] = (int)(one ? hi : __vsub4(hi, 0x08080808u));
    }
    g.sLo = g.sHi = ggml_f16(b);
    g.m = one ? ggml_f16(b + 2) : 0.f;
  } else if constexpr (TYPE == TM_Q5_0 || TYPE == TM_Q5_1) {
    constexpr bool one = TYPE == TM_Q5_1;
    const uint32_t qh = ggml_u32(b + (one ? 4 : 2));
    const uint8_t* qs = b + (one ? 8 : 6);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const uint32_t w = ggml_u32(qs + 4 * i);
      const uint32_t lo = (w & 0x0F0F0F0Fu) | ggml_spread4(qh >> (4 * i));
      const uint32_t hi = ((w >> 4) & 0x0F0F0F0Fu) | ggml_spread4(qh >> (16 + 4 * i));
      g.c[i] = (int)(one ? lo : __vsub4(lo, 0x10101010u));
      g.c[i + 4] = (int)(one ? hi : __vsub4(hi, 0x10101010u));
    }
    g.sLo = g.sHi = ggml_f16(b);
    g.m = one ? ggml_f16(b + 2) : 0.f;
  } else if constexpr (TYPE == TM_Q4_K || TYPE == TM_Q5_K) {
    constexpr bool five = TYPE == TM_Q5_K;
    const uint8_t* qs = b + (five ? 48 : 16) + 32 * (j >> 1);
    const int shift = (j & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
      uint32_t w = (ggml_u32(qs + 4 * i) >> shift) & 0x0F0F0F0Fu;
      if (five) w |= ((ggml_u32(b + 16 + 4 * i) >> j) & 0x01010101u) << 4;
      g.c[i] = (int)w;
    }
    int sc, mn;
    ggml_k_scale_min(b + 4, j, sc, mn);
    g.sLo = g.sHi = __fmul_rn(ggml_f16(b), (float)sc);
    g.m = -__fmul_rn(ggml_f16(b + 2), (float)mn);
  } else {  // Q6_K: group j covers elements 32j .. 32j + 31: half = j >> 2, quarter r = j & 3 within it
    const int half = j >> 2, r = j & 3;
    const uint8_t* ql = b + 64 * half + (r & 1) * 32;
    const uint8_t* qh = b + 128 + 32 * half;
    const int shift = (r >> 1) ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
      const uint32_t lo = (ggml_u32(ql + 4 * i) >> shift) & 0x0F0F0F0Fu;
      const uint32_t hi = ((ggml_u32(qh + 4 * i) >> (2 * r)) & 0x03030303u) << 4;
      g.c[i] = (int)__vsub4(lo | hi, 0x20202020u);
    }
    const float d = ggml_f16(b + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + 2 * r);
    g.sLo = __fmul_rn(d, (float)sc[0]);
    g.sHi = __fmul_rn(d, (float)sc[1]);
    g.m = 0.f;
  }
}

// Byte e (0..3) of word w as a signed code.
__device__ __forceinline__ int ggml_code(int w, int e) { return (int)(int8_t)(w >> (8 * e)); }
