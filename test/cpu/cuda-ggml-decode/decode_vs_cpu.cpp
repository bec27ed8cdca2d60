// The CUDA group decoder (native/cuda/ggml_decode.cuh, compiled for the host through the common.cuh
// stand-in beside it) against the CPU block decoder (native/cpu/ggml_blocks.h) on seeded random
// blocks of every format: codes, half scales and min bit for bit. Prints one line per format and
// exits 1 on any mismatch.
#include <cstdio>
#include <random>
#include <vector>
#include "ggml_decode.cuh"
#include "native/cpu/ggml_blocks.h"

using namespace tmill::cpu;

template <int TYPE> int check(std::mt19937& rng) {
  typedef GgmlFormat<TYPE> F;
  constexpr int nb = 5, gpb = F::elems / 32;
  std::vector<uint8_t> row(nb * F::bytes);
  // f16 fields per format (byte offsets); their exponent's top bit is cleared so values stay finite.
  const int f16s = TYPE == TM_Q4_0 || TYPE == TM_Q5_0 || TYPE == TM_Q8_0 || TYPE == TM_Q6_K ? 1 : 2;
  const int f16At = TYPE == TM_Q6_K ? 208 : 0;
  int bad = 0;
  for (int it = 0; it < 400; it++) {
    for (auto& b : row) b = (uint8_t)(rng() & 0xff);
    for (int k = 0; k < nb; k++)
      for (int i = 0; i < f16s; i++) row[k * F::bytes + f16At + 2 * i + 1] &= 0xBF;
    for (int k = 0; k < nb; k++) {
      GgmlBlock blk;
      decode_block(TYPE, row.data() + k * F::bytes, &blk);
      for (int j = 0; j < gpb; j++) {
        GgmlGroup g;
        ggml_group<TYPE>(row.data(), k * gpb + j, g);
        for (int e = 0; e < 32; e++) bad += ggml_code(g.c[e >> 2], e & 3) != blk.c[32 * j + e];
        bad += memcmp(&g.sLo, &blk.s_lo[j], 4) != 0 || memcmp(&g.sHi, &blk.s_hi[j], 4) != 0 || memcmp(&g.m, &blk.m[j], 4) != 0;
      }
    }
  }
  printf("type %d: %d mismatches in %d groups\n", TYPE, bad, 400 * nb * gpb);
  return bad;
}

int main() {
  std::mt19937 rng(7);
  const int bad = check<TM_Q4_0>(rng) + check<TM_Q4_1>(rng) + check<TM_Q5_0>(rng) + check<TM_Q5_1>(rng) + check<TM_Q8_0>(rng) +
                  check<TM_Q4_K>(rng) + check<TM_Q5_K>(rng) + check<TM_Q6_K>(rng);
  return bad != 0;
}
