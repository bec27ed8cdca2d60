// Run-time ISA dispatch: the best kernel table this CPU supports (avx512 needs f/bw/vl; avx2 needs
// avx2/fma/f16c), each with its VNNI variant where the CPU has AVX512-VNNI (+VL) / AVX-VNNI, and above
// avx512vnni the AMX variant where the CPU has AMX-TILE + AMX-INT8 and the OS grants tile state;
// optionally forced lower for tests via the backend option ("avx512amx", "avx512vnni", "avx512",
// "avx2vnni", "avx2", "generic").
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "engine.h"

namespace tmill { namespace cpu {

namespace {
// Linux hands out AMX tile data state only to a process that asks for it (arch_prctl
// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without it the first tile instruction raises SIGILL.
// The grant covers every thread of the process. Asked once; false where the kernel refuses.
bool amx_permitted() {
#if defined(__linux__) && defined(__x86_64__)
  static const bool granted = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return granted;
#else
  return false;
#endif
}
}  // namespace

const KernelTable* select_kernels(const char* force) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
                      __builtin_cpu_supports("fma");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool vnni512 = avx512 && __builtin_cpu_supports("avx512vnni");
  const bool vnni256 = avx2 && __builtin_cpu_supports("avxvnni");
  const bool amx = vnni512 && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8") && amx_permitted();
  if (force != nullptr && force[0] != '\0') {
    if (std::strcmp(force, "generic") == 0) return kernels_generic();
    if (std::strcmp(force, "avx2") == 0 && avx2) return kernels_avx2();
    if (std::strcmp(force, "avx2vnni") == 0 && vnni256) return kernels_avx2_vnni();
    if (std::strcmp(force, "avx512") == 0 && avx512) return kernels_avx512();
    if (std::strcmp(force, "avx512vnni") == 0 && vnni512) return kernels_avx512_vnni();
    if (std::strcmp(force, "avx512amx") == 0 && amx) return kernels_avx512_amx();
  }
  if (amx) return kernels_avx512_amx();
  if (vnni512) return kernels_avx512_vnni();
  if (avx512) return kernels_avx512();
  if (vnni256) return kernels_avx2_vnni();
  if (avx2) return kernels_avx2();
  return kernels_generic();
}

}}  // namespace tmill::cpu
