// The KernelTable of one ISA build (compiled once per ISA library with -DTM_ISA=<name>): collects
// this ISA's range kernels from matmul.cpp, matmul_q8.cpp, matmul_q8_amx.cpp, quantize_rows16.cpp, matmul_ggml.cpp, matmul_ggml_amx.cpp, norm.cpp, elementwise.cpp, gather.cpp, attention.cpp.
#include "kernels.h"
#include "simd.h"

namespace tmill { namespace cpu {
namespace TM_ISA {
void matmul(const MatmulArgs& a, int64_t n0, int64_t n1);
void rmsnorm(float* out, const float* x, const void* w, DType wd, int64_t D, float eps, int64_t r0, int64_t r1);
void add_rmsnorm(float* out, float* residual, const float* x, const void* w, DType wd, int64_t D, float eps,
                 int64_t r0, int64_t r1);
void silu_mul(float* out, const float* gate_up, int64_t I, int64_t r0, int64_t r1);
void gather_rows(float* out, const void* src, DType sd, const int32_t* idx, int64_t D, int64_t r0, int64_t r1);
void argmax(int32_t* out, const float* logits, int64_t V, int64_t r0, int64_t r1);
void attention(const AttentionArgs& a, const AttentionTask* tasks, int64_t t0, int64_t t1);
void matmul_q8(const MatmulQ8Args& a, int64_t n0, int64_t n1);
void matmul_q8_vnni(const MatmulQ8Args& a, int64_t n0, int64_t n1);
void quantize_rows16(const float* x, int64_t K, int64_t ldq, int16_t* q, float* d, int64_t r0, int64_t r1);
void quantize_act(const float* x, int8_t* q, float* d, int32_t* s, int64_t K, int64_t r0, int64_t r1);
void matmul_ggml(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);
void matmul_ggml_vnni(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);
void matmul_q8_amx(const MatmulQ8Args& a, int64_t n0, int64_t n1);
bool q8_amx_usable(int64_t T, int64_t K);
void q8_pack_amx(const int16_t* xq, int64_t ldx, int64_t K, uint8_t* dst, int64_t tb0, int64_t tb1);
void matmul_ggml_amx(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);
bool ggml_amx_type(int32_t type);
void ggml_pack_amx(const int8_t* xq, const float* xd, const int32_t* xs, int64_t T, int64_t K, uint8_t* dst, int64_t tb0,
                   int64_t tb1);
void dequant_rows(float* out, const uint8_t* w, int32_t type, int64_t row_bytes, int64_t K, const int32_t* ids, int64_t r0,
                  int64_t r1);

static const KernelTable kTable = {TM_ISA_NAME, matmul, rmsnorm, add_rmsnorm, silu_mul,
                                   gather_rows, argmax, attention, matmul_q8, quantize_rows16, quantize_act, matmul_ggml,
                                   dequant_rows, nullptr, nullptr, nullptr, nullptr};
#if defined(__AVX2__)
// The same table with the VNNI variants of matmul_q8 and matmul_ggml (dispatch.cpp checks the CPU flag first).
static const KernelTable kTableVnni = {TM_ISA_NAME "vnni", matmul, rmsnorm, add_rmsnorm, silu_mul,
                                       gather_rows, argmax, attention, matmul_q8_vnni, quantize_rows16, quantize_act, matmul_ggml_vnni,
                                       dequant_rows, nullptr, nullptr, nullptr, nullptr};
#endif
#if defined(__AVX512F__)
// The VNNI table with the AMX int8 matmul (matmul_q8_amx.cpp), the AMX Q8_0 / Q4_K / Q6_K matmul_ggml
// (matmul_ggml_amx.cpp) and their activation packing.
static const KernelTable kTableAmx = {TM_ISA_NAME "amx", matmul, rmsnorm, add_rmsnorm, silu_mul,
                                      gather_rows, argmax, attention, matmul_q8_amx, quantize_rows16, quantize_act, matmul_ggml_amx,
                                      dequant_rows, q8_amx_usable, q8_pack_amx, ggml_amx_type, ggml_pack_amx};
#endif
}  // namespace TM_ISA

#define TM_CONCAT2(a, b) a##b
#define TM_CONCAT(a, b) TM_CONCAT2(a, b)
const KernelTable* TM_CONCAT(kernels_, TM_ISA)() { return &TM_ISA::kTable; }
#if defined(__AVX2__)
const KernelTable* TM_CONCAT(TM_CONCAT(kernels_, TM_ISA), _vnni)() { return &TM_ISA::kTableVnni; }
#endif
#if defined(__AVX512F__)
const KernelTable* TM_CONCAT(TM_CONCAT(kernels_, TM_ISA), _amx)() { return &TM_ISA::kTableAmx; }
#endif

}}  // namespace tmill::cpu
