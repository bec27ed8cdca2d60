// ggml block decoding shared by every ISA build (matmul_ggml.cpp): one block -> its integer codes
// (offsets folded in) and, per 32-weight group, the f32 scales of its two 16-weight halves and its
// min, exactly as src/runtime/reference/ops-ggml.ts ggmlGroup defines them (the spec). Weight value
// = code * s (+ m for Q4_1, Q5_1, Q4_K, Q5_K), each step rounded to f32 (-ffp-contract=off).
// Layouts: src/runtime/reference/ggml-dequant.ts. Plain loops; the compiler vectorizes them per ISA, so
// every function is static (one copy per ISA library: an inline one would let the linker keep the
// avx512 copy for the avx2 and generic tables too).
#pragma once
#include <cstdint>
#include <cstring>

#include "../common/dtype.h"

namespace tmill { namespace cpu {

enum GgmlType : int32_t { kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14 };

static inline bool ggml_type_valid(int32_t t) {
  return t == kQ4_0 || t == kQ4_1 || t == kQ5_0 || t == kQ5_1 || t == kQ8_0 || t == kQ4_K || t == kQ5_K || t == kQ6_K;
}
static inline int ggml_block_elems(int32_t t) { return t >= kQ4_K ? 256 : 32; }
static inline int ggml_block_bytes(int32_t t) {
  switch (t) {
    case kQ4_0: return 18; case kQ4_1: return 20; case kQ5_0: return 22; case kQ5_1: return 24; case kQ8_0: return 34;
    case kQ4_K: return 144; case kQ5_K: return 176; case kQ6_K: return 210; default: return 0;
  }
}
static inline bool ggml_has_min(int32_t t) { return t == kQ4_1 || t == kQ5_1 || t == kQ4_K || t == kQ5_K; }

static inline float ggml_f16(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// One decoded block: up to 256 codes, 8 groups of scales.
struct GgmlBlock {
  alignas(32) int8_t c[256];
  float s_lo[8], s_hi[8], m[8];
};

static inline void k_scale_min(const uint8_t* q, int j, int* sc, int* mn) {
  if (j < 4) { *sc = q[j] & 63; *mn = q[j + 4] & 63; }
  else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

static inline void decode_nibbles(const uint8_t* qs, int off, int8_t* c) {
  for (int i = 0; i < 16; i++) {
    c[i] = static_cast<int8_t>((qs[i] & 0xF) - off);
    c[i + 16] = static_cast<int8_t>((qs[i] >> 4) - off);
  }
}

static inline void decode_block(int32_t type, const uint8_t* b, GgmlBlock* o) {
  switch (type) {
    case kQ8_0:
      std::memcpy(o->c, b + 2, 32);
      o->s_lo[0] = o->s_hi[0] = ggml_f16(b); o->m[0] = 0.f;
      return;
    case kQ4_0: case kQ4_1: {
      const bool one = type == kQ4_1;
      decode_nibbles(b + (one ? 4 : 2), one ? 0 : 8, o->c);
      o->s_lo[0] = o->s_hi[0] = ggml_f16(b); o->m[0] = one ? ggml_f16(b + 2) : 0.f;
      return;
    }
    case kQ5_0: case kQ5_1: {
      const bool one = type == kQ5_1;
      uint32_t qh; std::memcpy(&qh, b + (one ? 4 : 2), 4);
      const uint8_t* qs = b + (one ? 8 : 6);
      const int off = one ? 0 : 16;
      for (int i = 0; i < 16; i++) {
        o->c[i] = static_cast<int8_t>(((qs[i] & 0xF) | (((qh >> i) & 1) << 4)) - off);
        o->c[i + 16] = static_cast<int8_t>(((qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4)) - off);
      }
      o->s_lo[0] = o->s_hi[0] = ggml_f16(b); o->m[0] = one ? ggml_f16(b + 2) : 0.f;
      return;
    }
    case kQ4_K: case kQ5_K: {
      const bool five = type == kQ5_K;
      const float d = ggml_f16(b), dmin = ggml_f16(b + 2);
      const uint8_t* qh = b + 16;
      const uint8_t* qs = b + (five ? 48 : 16);
      for (int g = 0; g < 8; g++) {
        const uint8_t* q = qs + 32 * (g >> 1);
        const int shift = (g & 1) * 4;
        int8_t* c = o->c + 32 * g;
        if (five) for (int i = 0; i < 32; i++) c[i] = static_cast<int8_t>(((q[i] >> shift) & 0xF) | (((qh[i] >> g) & 1) << 4));
        else for (int i = 0; i < 32; i++) c[i] = static_cast<int8_t>((q[i] >> shift) & 0xF);
        int sc, mn;
        k_scale_min(b + 4, g, &sc, &mn);
        o->s_lo[g] = o->s_hi[g] = d * static_cast<float>(sc);
        o->m[g] = -(dmin * static_cast<float>(mn));
      }
      return;
    }
    case kQ6_K: {
      const float d = ggml_f16(b + 208);
      for (int g = 0; g < 8; g++) {
        const int half = g >> 2, r = g & 3;
        const uint8_t* ql = b + 64 * half + (r & 1) * 32;
        const uint8_t* qh = b + 128 + 32 * half;
        const int shift = (r >> 1) ? 4 : 0;
        int8_t* c = o->c + 32 * g;
        for (int i = 0; i < 32; i++) c[i] = static_cast<int8_t>((((ql[i] >> shift) & 0xF) | (((qh[i] >> (2 * r)) & 3) << 4)) - 32);
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * half + 2 * r);
        o->s_lo[g] = d * static_cast<float>(sc[0]);
        o->s_hi[g] = d * static_cast<float>(sc[1]);
        o->m[g] = 0.f;
      }
      return;
    }
    default: return;
  }
}

}}  // namespace tmill::cpu
