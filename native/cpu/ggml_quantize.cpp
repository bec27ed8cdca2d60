// See ggml_quantize.h. Each function mirrors its namesake in ggml-quantize.ts line by line: JS
// numbers are doubles, so every intermediate here is a double unless the TS rounds it (Math.fround,
// a Float32Array store: `fr`), and evaluation order follows the TS expressions (a * b * c is
// (a * b) * c). The build has -ffp-contract=off, so no multiply-add is fused. JS's Math.min/max
// order -0 below +0; js_min/js_max do too (a zero block min is written as its f16, sign and all).
#include "ggml_quantize.h"

#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

namespace tmill { namespace cpu {

namespace {

inline double fr(double v) { return static_cast<double>(static_cast<float>(v)); }

// floor without a libm call (the addon is built for baseline x86-64, which has no roundsd): every
// double of magnitude 2^52 and up is an integer already.
inline double floor_d(double v) {
  if (!(std::fabs(v) < 4503599627370496.0)) return v;
  const double t = static_cast<double>(static_cast<int64_t>(v));
  return t - static_cast<double>(t > v);
}
// ggml's nearest_int on a double: half to even. Below 2^52, adding and taking away 2^52 rounds to
// the nearest integer, ties to even, in one add and one subtract (no branch: the search loops feed
// it fractions that fall either side of a half at random); from 2^52 up every double is an integer.
// (A zero may come out with the other sign than the TS floor-based version gives; every use clamps it
// into a byte or adds it to a sum that started at +0, where the sign of a zero cannot show.)
inline double nearest(double v) {
  constexpr double M = 4503599627370496.0;
  const double r = v >= 0 ? (v + M) - M : (v - M) + M;
  return std::fabs(v) < M ? r : v;
}
// JS Math.round: half toward +infinity; roundAway: C's roundf (half away from zero).
inline double js_round(double v) {
  const double f = floor_d(v);
  return v - f >= 0.5 ? f + 1 : f;
}
inline double round_away(double v) { return v < 0 ? -js_round(-v) : js_round(v); }
inline double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
inline double js_min(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a < b) return a;
  if (b < a) return b;
  return (a == 0 && (std::signbit(a) || std::signbit(b))) ? -0.0 : a;
}
inline double js_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a > b) return a;
  if (b > a) return b;
  return (a == 0 && !(std::signbit(a) && std::signbit(b))) ? 0.0 : a;
}
// A Uint8Array store (ToUint8): NaN and infinities give 0, else the value truncated, modulo 256. A
// 1/d of a subnormal d overflows to infinity and its codes become NaN on both sides.
inline uint8_t u8(double v) {
  if (!std::isfinite(v)) return 0;
  if (std::fabs(v) >= 4611686018427387904.0) v = std::fmod(v, 256.0);
  return static_cast<uint8_t>(static_cast<int64_t>(v));
}
// JS truthiness of a number: NaN and zeros are false.
inline bool truthy(double v) { return v != 0 && !std::isnan(v); }

// dtype.ts f32ToF16 (the value rounded to f32 first, then to f16 half to even) and f16ToF32.
uint16_t f32_to_f16(double x) {
  const float f = static_cast<float>(x);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((u >> 23) & 0xff);
  uint32_t mant = u & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const int32_t shift = 14 - e;
    const uint32_t half = 1u << (shift - 1), rem = mant & ((1u << shift) - 1);
    uint32_t r = mant >> shift;
    if (rem > half || (rem == half && (r & 1) == 1)) r++;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = mant >> 13;
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1)) {
    r++;
    if (r == 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
    }
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | r);
}
double f16_to_f32(uint16_t h) {
  const double s = (h & 0x8000) != 0 ? -1 : 1;
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) return s * m * std::ldexp(1.0, -24);
  if (e == 0x1f) return m == 0 ? s * INFINITY : NAN;
  return s * (1 + m / 1024.0) * std::ldexp(1.0, e - 15);
}
double put_f16(uint8_t* b, double v) {
  const uint16_t h = f32_to_f16(v);
  b[0] = static_cast<uint8_t>(h & 0xff);
  b[1] = static_cast<uint8_t>(h >> 8);
  return f16_to_f32(h);
}

constexpr int32_t kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14;

void legacy_block(int32_t type, const float* x, uint8_t* b) {
  double amax = 0, max = 0, mn = INFINITY, mx = -INFINITY;
  for (int i = 0; i < 32; i++) {
    const double v = x[i];
    if (std::fabs(v) > amax) {
      amax = std::fabs(v);
      max = v;
    }
    mn = js_min(mn, v);
    mx = js_max(mx, v);
  }
  if (type == kQ8_0) {
    const double d = fr(amax / 127), id = truthy(d) ? fr(1 / d) : 0;
    put_f16(b, d);
    for (int i = 0; i < 32; i++) b[2 + i] = u8(round_away(fr(x[i] * id)));
    return;
  }
  const bool min_type = type == kQ4_1 || type == kQ5_1;
  const int levels = type == kQ4_0 || type == kQ4_1 ? 15 : 31;
  const double d = min_type ? fr((mx - mn) / levels) : fr(max / (type == kQ4_0 ? -8 : -16));
  const double id = truthy(d) ? fr(1 / d) : 0;
  put_f16(b, d);
  if (min_type) put_f16(b + 2, mn);
  uint8_t codes[32];
  for (int i = 0; i < 32; i++) {
    const double v = min_type ? fr(fr(x[i] - mn) * id) + 0.5 : fr(x[i] * id) + (type == kQ4_0 ? 8.5 : 16.5);
    codes[i] = u8(js_min(levels, std::trunc(fr(v))));
  }
  if (levels == 15) {
    uint8_t* qs = b + (min_type ? 4 : 2);
    for (int j = 0; j < 16; j++) qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
    return;
  }
  uint8_t* qh_at = b + (min_type ? 4 : 2);
  uint8_t* qs = qh_at + 4;
  uint32_t qh = 0;
  for (int j = 0; j < 16; j++) {
    qs[j] = static_cast<uint8_t>((codes[j] & 0xf) | ((codes[j + 16] & 0xf) << 4));
    qh |= static_cast<uint32_t>((codes[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((codes[j + 16] >> 4) & 1) << (j + 16);
  }
  for (int k = 0; k < 4; k++) qh_at[k] = static_cast<uint8_t>((qh >> (8 * k)) & 0xff);
}

// One copy of the lane loops per ISA; Lanes picks one (quantize_ggml_rows' isa argument).
#if defined(__x86_64__) && defined(__GNUC__)
#define TM_QUANT_X86 1
namespace isa_avx512 {
#define TM_QL_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#include "ggml_quantize_lanes.inc"
#undef TM_QL_TARGET
}  // namespace isa_avx512
namespace isa_avx2 {
#define TM_QL_TARGET __attribute__((target("avx2")))
#include "ggml_quantize_lanes.inc"
#undef TM_QL_TARGET
}  // namespace isa_avx2
#endif
namespace isa_baseline {
#define TM_QL_TARGET
#include "ggml_quantize_lanes.inc"
#undef TM_QL_TARGET
}  // namespace isa_baseline

struct Lanes {
  void (*scale_min_search8)(int, const float*, const float (&)[8][32], double, double, int, float*, float*);
  void (*signed_scale16)(const float*, float*);
};

void k_block(const Lanes& ln, bool five, const float* x, uint8_t* b) {
  const int nmax = five ? 31 : 15;
  float scales[8], mins[8], wt[8][32];
  uint8_t L[256];
  for (int j = 0; j < 8; j++) {
    double sum_x2 = 0;
    for (int i = 0; i < 32; i++) sum_x2 += static_cast<double>(x[32 * j + i]) * x[32 * j + i];
    const double av = std::sqrt(sum_x2 / 32);
    for (int i = 0; i < 32; i++) wt[j][i] = static_cast<float>(av + std::fabs(static_cast<double>(x[32 * j + i])));
  }
  if (five) ln.scale_min_search8(nmax, x, wt, -0.5, 0.1, 15, scales, mins);
  else ln.scale_min_search8(nmax, x, wt, -1, 0.1, 20, scales, mins);
  double max_scale = -INFINITY, max_min = -INFINITY;
  for (int j = 0; j < 8; j++) {
    max_scale = js_max(max_scale, scales[j]);
    max_min = js_max(max_min, mins[j]);
  }
  const double inv_s = max_scale > 0 ? 63 / max_scale : 0, inv_m = max_min > 0 ? 63 / max_min : 0;
  uint8_t* sc = b + 4;
  std::memset(b, 0, five ? 176 : 144);
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; j++) {
    ls[j] = u8(js_min(63, nearest(inv_s * scales[j])));
    lm[j] = u8(js_min(63, nearest(inv_m * mins[j])));
    if (j < 4) {
      sc[j] = ls[j];
      sc[j + 4] = lm[j];
    } else {
      sc[j + 4] = static_cast<uint8_t>((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
      sc[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      sc[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
  const double d = put_f16(b, max_scale / 63), dmin = put_f16(b + 2, max_min / 63);
  for (int j = 0; j < 8; j++) {
    const double dj = fr(d * ls[j]), mj = fr(dmin * lm[j]);
    for (int i = 0; i < 32; i++)
      L[32 * j + i] = truthy(dj) ? u8(clampd(nearest(fr(x[32 * j + i] + mj) / dj), 0, nmax)) : 0;
  }
  uint8_t* qs = b + (five ? 48 : 16);
  for (int p = 0; p < 4; p++)
    for (int l = 0; l < 32; l++) {
      const int a = L[64 * p + l], c = L[64 * p + 32 + l];
      qs[32 * p + l] = static_cast<uint8_t>((a & 0xf) | ((c & 0xf) << 4));
      if (five) b[16 + l] |= static_cast<uint8_t>(((a >> 4) << (2 * p)) | ((c >> 4) << (2 * p + 1)));
    }
}

void q6k_block(const Lanes& ln, const float* x, uint8_t* b) {
  float scales[16];
  ln.signed_scale16(x, scales);
  double max_abs = 0, max = 0;
  for (int j = 0; j < 16; j++) {
    if (std::fabs(static_cast<double>(scales[j])) > max_abs) {
      max_abs = std::fabs(static_cast<double>(scales[j]));
      max = scales[j];
    }
  }
  std::memset(b, 0, 210);
  if (max_abs == 0) return;
  const double iscale = -128 / max;
  const double d = put_f16(b + 208, 1 / iscale);
  uint8_t L[256];
  for (int j = 0; j < 16; j++) {
    const double s = js_min(127, nearest(iscale * scales[j]));
    b[192 + j] = u8(s);
    const double dj = fr(d * s);
    for (int i = 0; i < 16; i++) L[16 * j + i] = truthy(dj) ? u8(clampd(nearest(x[16 * j + i] / dj), -32, 31) + 32) : 32;
  }
  for (int half = 0; half < 2; half++) {
    uint8_t* ql = b + 64 * half;
    uint8_t* qh = b + 128 + 32 * half;
    const int e = 128 * half;
    for (int l = 0; l < 32; l++) {
      const int q1 = L[e + l], q2 = L[e + l + 32], q3 = L[e + l + 64], q4 = L[e + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

struct Format {
  int elems, bytes;
};
Format format_of(int32_t type) {
  switch (type) {
    case kQ4_0: return {32, 18};
    case kQ4_1: return {32, 20};
    case kQ5_0: return {32, 22};
    case kQ5_1: return {32, 24};
    case kQ8_0: return {32, 34};
    case kQ4_K: return {256, 144};
    case kQ5_K: return {256, 176};
    case kQ6_K: return {256, 210};
    default: return {0, 0};
  }
}

void quantize_rows(const Lanes& ln, int32_t type, const float* x, int64_t K, uint8_t* out, int64_t n0, int64_t n1) {
  const Format f = format_of(type);
  const int64_t nb = K / f.elems, rb = nb * f.bytes;
  for (int64_t n = n0; n < n1; n++)
    for (int64_t k = 0; k < nb; k++) {
      const float* xb = x + n * K + k * f.elems;
      uint8_t* b = out + n * rb + k * f.bytes;
      if (type == kQ4_K || type == kQ5_K) k_block(ln, type == kQ5_K, xb, b);
      else if (type == kQ6_K) q6k_block(ln, xb, b);
      else legacy_block(type, xb, b);
    }
}

// The lane loops for `isa`, or null where this CPU (or build) cannot run them.
const Lanes* lanes_for(QuantIsa isa) {
  static const Lanes base{isa_baseline::scale_min_search8, isa_baseline::signed_scale16};
#if TM_QUANT_X86
  static const Lanes avx2{isa_avx2::scale_min_search8, isa_avx2::signed_scale16};
  static const Lanes avx512{isa_avx512::scale_min_search8, isa_avx512::signed_scale16};
  const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const bool has2 = __builtin_cpu_supports("avx2");
  switch (isa) {
    case QuantIsa::kAuto: return has512 ? &avx512 : has2 ? &avx2 : &base;
    case QuantIsa::kAvx512: return has512 ? &avx512 : nullptr;
    case QuantIsa::kAvx2: return has2 ? &avx2 : nullptr;
    case QuantIsa::kBaseline: return &base;
  }
  return nullptr;
#else
  return isa == QuantIsa::kAuto || isa == QuantIsa::kBaseline ? &base : nullptr;
#endif
}

}  // namespace

bool quantize_isa_available(QuantIsa isa) { return lanes_for(isa) != nullptr; }

int64_t ggml_quantize_row_bytes(int32_t type, int64_t K) {
  const Format f = format_of(type);
  if (f.elems == 0 || K <= 0 || K % f.elems != 0) return 0;
  return K / f.elems * f.bytes;
}

bool quantize_ggml_rows(int32_t type, const float* x, int64_t N, int64_t K, uint8_t* out, int num_threads, QuantIsa isa) {
  const Lanes* ln = lanes_for(isa);
  if (ggml_quantize_row_bytes(type, K) == 0 || ln == nullptr) return false;
  if (num_threads < 1) num_threads = 1;
  if (num_threads > N) num_threads = static_cast<int>(N > 0 ? N : 1);
  // Rows in interleaved slices of 16 so that the threads finish together whatever the row costs.
  constexpr int64_t kSlice = 16;
  auto worker = [&](int t) {
    for (int64_t n0 = t * kSlice; n0 < N; n0 += kSlice * num_threads)
      quantize_rows(*ln, type, x, K, out, n0, n0 + kSlice < N ? n0 + kSlice : N);
  };
  std::vector<std::thread> ts;
  for (int t = 1; t < num_threads; t++) ts.emplace_back(worker, t);
  worker(0);
  for (auto& th : ts) th.join();
  return true;
}

}}  // namespace tmill::cpu
