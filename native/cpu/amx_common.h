// Shared by the AMX kernels (matmul_q8_amx.cpp, matmul_ggml_amx.cpp), both compiled in the avx512
// library only: the tile configuration block, a thread's aligned scratch, and the in-register
// 16 x 16 int32 transpose their epilogues use to turn [weight row][token] sums into output rows.
// Include inside namespace TM_ISA. Requires: immintrin.h (AVX-512F), cstdint, cstdlib (included first).
#pragma once

// The 64-byte block _tile_loadconfig reads (palette 1: 8 tiles of up to 16 rows x 64 bytes).
struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// _tile_loadconfig with the whole block visible to the optimizer: GCC 12's builtin declares a read of
// only 8 bytes at the pointer (an "m" operand of type void*), so the stores that fill colsb and rows
// may be dropped as dead; they are kept here by an asm that takes the block's address and clobbers
// memory. (A standalone tile microbenchmark built with -O2 lost them and raised SIGILL at its first
// tilezero.) Requires the amx-tile target where it is called.
#define TM_LOAD_TILE_CONFIG(cfg)                           \
  do {                                                     \
    asm volatile("" : : "r"(&(cfg)) : "memory");           \
    _tile_loadconfig(&(cfg));                              \
  } while (0)

// A thread's 64-byte aligned scratch, kept for the thread's life and grown on demand.
struct AmxScratch {
  uint8_t* p = nullptr;
  size_t size = 0;
  uint8_t* get(size_t n) {
    if (n > size) {
      std::free(p);
      size = (n + 63) & ~size_t{63};
      p = static_cast<uint8_t*>(std::aligned_alloc(64, size));
    }
    return p;
  }
  ~AmxScratch() { std::free(p); }
};

// r[i] = row i of a 16 x 16 block of 32-bit values, transposed in place: 32-bit and 64-bit unpacks
// within 128-bit lanes, then two rounds of lane shuffles; 64 shuffles in all.
inline void transpose16(__m512i* r) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4 q + c], lane L: column 4 L + c of rows 4 q .. 4 q + 3.
  for (int q = 0; q < 4; q++) {
    u[4 * q] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int c = 0; c < 4; c++) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}
