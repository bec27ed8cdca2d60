// CpuEngine ops on ggml-quantized weights (Backend.matmulGgml / embeddingGgml): validate the
// references, the type code and the row size (row_bytes = K / block * block bytes), quantize the
// activations once per call into engine scratch, then split N over the pool (as op_matmul_q8) or
// the rows of an embedding. Kernels: matmul_ggml.cpp (per ISA); block layouts: ggml_blocks.h.
#include "engine.h"
#include "ggml_blocks.h"

namespace tmill { namespace cpu {

namespace {
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t kParallelMinWork = 1 << 15;
inline bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

Status check_layout(const char* op, int32_t type, int64_t K, int64_t row_bytes) {
  TM_CHECK_ARG(ggml_type_valid(type), "%s: unknown ggml type code %d", op, type);
  const int64_t be = ggml_block_elems(type);
  TM_CHECK_ARG(K > 0 && K % be == 0 && K % 32 == 0, "%s: K %lld is not a multiple of the block (%lld)", op,
               static_cast<long long>(K), static_cast<long long>(be));
  TM_CHECK_ARG(row_bytes == K / be * ggml_block_bytes(type), "%s: row of %lld bytes does not hold %lld weights", op,
               static_cast<long long>(row_bytes), static_cast<long long>(K));
  return Status::Ok();
}
}  // namespace

// Payload layout: op_abi.h op_matmulGgml (refs out, x, w, bias; T, K, N, rowBytes, type).
Status CpuEngine::op_matmul_ggml(const int32_t* a) {
  using namespace op_matmulGgml;
  const int64_t T = a[kT], K = a[kK], N = a[kN], row_bytes = a[kRowBytes];
  const int32_t type = a[kType];
  TM_CHECK_ARG(T >= 0 && N >= 0, "matmulGgml: negative shape");
  TM_RETURN_IF_ERROR(check_layout("matmulGgml", type, K, row_bytes));
  Ref out, x, w, bias;
  TM_RETURN_IF_ERROR(ref(a + kOut, T * N, &out));
  TM_RETURN_IF_ERROR(ref(a + kX, T * K, &x));
  TM_RETURN_IF_ERROR(ref(a + kW, N * row_bytes, &w));
  TM_RETURN_IF_ERROR(ref(a + kBias, N, &bias, true));
  TM_CHECK_ARG(out.dtype == DType::kF32 && x.dtype == DType::kF32 && w.dtype == DType::kI8,
               "matmulGgml: expected out/x f32, w i8 (raw blocks)");
  TM_CHECK_ARG(bias.ptr == nullptr || is_float(bias.dtype), "matmulGgml: bias must be a float tensor");
  const int64_t G = K / 32;
  if (static_cast<int64_t>(act_q_.size()) < T * K) act_q_.resize(static_cast<size_t>(T * K));
  if (static_cast<int64_t>(act_d_.size()) < T * G) { act_d_.resize(static_cast<size_t>(T * G)); act_s_.resize(static_cast<size_t>(T * G)); }
  const KernelTable* k = kernels_;
  const float* xp = reinterpret_cast<const float*>(x.ptr);
  int8_t* q = act_q_.data();
  float* d = act_d_.data();
  int32_t* s = act_s_.data();
  pool_.parallel_for(T, T * K < kParallelMinWork ? T : ceil_div(kParallelMinWork, K),
                     [&](int64_t r0, int64_t r1) { k->quantize_act(xp, q, d, s, K, r0, r1); });
  // AMX tables: the type's tiles take 16 weight rows at a time and, for T >= 2, packed activations.
  const bool amx = k->ggml_amx_type != nullptr && k->ggml_amx_type(type);
  const uint8_t* xpack = nullptr;
  if (amx && T >= 2) {
    const int64_t blocks = (T + 15) / 16, bytes = blocks * G * kGgmlPackBlockBytes;
    if (static_cast<int64_t>(act_pack_.size()) < bytes) act_pack_.resize(static_cast<size_t>(bytes));
    uint8_t* pack = act_pack_.data();
    pool_.parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) { k->ggml_pack(q, d, s, T, K, pack, b0, b1); });
    xpack = pack;
  }
  MatmulGgmlArgs m{reinterpret_cast<float*>(out.ptr), q, d, s, reinterpret_cast<const uint8_t*>(w.ptr), bias.ptr,
                   bias.dtype, T, K, N, row_bytes, type, xpack};
  // ~8 chunks per thread for balance; tiny products stay on the calling thread.
  const int64_t unit = amx ? 16 : 1;
  int64_t grain = ceil_div(ceil_div(N, 8 * static_cast<int64_t>(pool_.num_threads())), unit) * unit;
  if (grain < unit) grain = unit;
  if (T * N * K < 8 * kParallelMinWork) grain = N;
  pool_.parallel_for(N, grain, [&](int64_t n0, int64_t n1) { k->matmul_ggml(m, n0, n1); }, T * N * K);
  return Status::Ok();
}

// Payload layout: op_abi.h op_embeddingGgml (refs out, w, ids; T, K, V, rowBytes, type).
Status CpuEngine::op_embedding_ggml(const int32_t* a) {
  using namespace op_embeddingGgml;
  const int64_t T = a[kT], K = a[kK], V = a[kV], row_bytes = a[kRowBytes];
  const int32_t type = a[kType];
  TM_CHECK_ARG(T >= 0 && V >= 0, "embeddingGgml: negative shape");
  TM_RETURN_IF_ERROR(check_layout("embeddingGgml", type, K, row_bytes));
  Ref out, w, ids;
  TM_RETURN_IF_ERROR(ref(a + kOut, T * K, &out));
  TM_RETURN_IF_ERROR(ref(a + kW, V * row_bytes, &w));
  TM_RETURN_IF_ERROR(ref(a + kIds, T, &ids));
  TM_CHECK_ARG(out.dtype == DType::kF32 && w.dtype == DType::kI8 && ids.dtype == DType::kI32,
               "embeddingGgml: expected out f32, w i8 (raw blocks), ids i32");
  const int32_t* id = reinterpret_cast<const int32_t*>(ids.ptr);
  for (int64_t t = 0; t < T; t++)
    TM_CHECK_RANGE(id[t] >= 0 && id[t] < V, "embeddingGgml: token id %d at row %lld is outside [0, %lld)", id[t],
                   static_cast<long long>(t), static_cast<long long>(V));
  float* o = reinterpret_cast<float*>(out.ptr);
  const uint8_t* wp = reinterpret_cast<const uint8_t*>(w.ptr);
  const KernelTable* k = kernels_;
  pool_.parallel_for(T, T * K < kParallelMinWork ? T : ceil_div(kParallelMinWork, K),
                     [&](int64_t r0, int64_t r1) { k->dequant_rows(o, wp, type, row_bytes, K, id, r0, r1); });
  return Status::Ok();
}

}}  // namespace tmill::cpu
