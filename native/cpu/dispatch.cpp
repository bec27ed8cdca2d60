// Run-time ISA dispatch: the best kernel table this CPU supports (avx512 needs f/bw/vl; avx2 needs
// avx2/fma/f16c), optionally forced lower for tests via TOKENMILL_CPU_ISA or the backend option.
#include <cstring>

#include "engine.h"

namespace tmill { namespace cpu {

const KernelTable* select_kernels(const char* force) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
                      __builtin_cpu_supports("fma");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (force != nullptr && force[0] != '\0') {
    if (std::strcmp(force, "generic") == 0) return kernels_generic();
    if (std::strcmp(force, "avx2") == 0 && avx2) return kernels_avx2();
    if (std::strcmp(force, "avx512") == 0 && avx512) return kernels_avx512();
  }
  if (avx512) return kernels_avx512();
  if (avx2) return kernels_avx2();
  return kernels_generic();
}

}}  // namespace tmill::cpu
