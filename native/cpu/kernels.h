// The per-ISA kernel table: plain range functions (no threads, no N-API) that the executor splits
// across the pool. Each ISA library (avx512 | avx2 | generic) fills one KernelTable from the same
// sources; dispatch.cpp picks one at start-up with __builtin_cpu_supports.
// Layout conventions: row-major, contiguous, activations f32; weights f32/f16/bf16 (DType).
#pragma once
#include <cstdint>

#include "../common/dtype.h"
#include "../common/status.h"

namespace tmill { namespace cpu {

struct MatmulArgs {
  float* out;          // [T, N]
  const float* x;      // [T, K]
  const void* w;       // [N, K] of wdtype
  const void* bias;    // [N] of bdtype, or null
  DType wdtype, bdtype;
  int64_t T, K, N;
};

struct MatmulQ8Args {
  float* out;            // [T, N]
  const int16_t* xq;     // [T, ldx] activation codes (engine_quant.cpp), zero past K
  const float* xd;       // [T] activation row scales
  const int8_t* wq;      // [N, K] symmetric int8
  const float* scales;   // [N] per output channel
  const void* bias;      // [N] of bdtype, or null
  DType bdtype;
  int64_t T, K, N, ldx;  // ldx: K rounded up to a multiple of 32
  const uint8_t* xpack;  // the codes of the full 16-token blocks packed by KernelTable::q8_pack, or null
};

// Packed activations of the AMX tables, bytes per 16-token block: q8_pack K * kQ8PackBytesPerK (the hi
// and lo bytes of 16 codes per k), ggml_pack (K / 32) * kGgmlPackBlockBytes (a 512-byte B tile of one
// 32-code group, then the 16 tokens' f32 scales dx and dx * code sum: ggml_amx.h).
constexpr int64_t kQ8PackBytesPerK = 32;
constexpr int64_t kGgmlPackBlockBytes = 512 + 128;

struct MatmulGgmlArgs {
  float* out;            // [T, N]
  const int8_t* xq;      // [T, K] activation codes (quantize_act)
  const float* xd;       // [T, K/32] activation group scales
  const int32_t* xs;     // [T, K/32] activation group code sums
  const uint8_t* w;      // [N, row_bytes] ggml blocks of `type` (ggml_blocks.h)
  const void* bias;      // [N] of bdtype, or null
  DType bdtype;
  int64_t T, K, N, row_bytes;
  int32_t type;
  const uint8_t* xpack;  // the activations packed by KernelTable::ggml_pack (T >= 2 on an AMX type), or null
};

struct AttentionArgs {
  float* out;              // [T, H, Dh]
  const float* q;          // [T, H, Dh]
  const void* kcache;      // [numBlocks, blockSize, Hkv, Dh] of kv_dtype (f32, f16 or bf16)
  const void* vcache;
  const int32_t* query_start_loc;  // [numSeqs + 1]
  const int32_t* seq_lens;         // [numSeqs]
  const int32_t* block_tables;     // [numSeqs, maxBlocksPerSeq]
  int64_t num_seqs, max_blocks_per_seq, H, Hkv, Dh, block_size, num_blocks;
  float scale;
  int64_t sliding_window;  // 0 = none
  DType kv_dtype;
};

// One attention task: queries [q0, q1) of sequence seq, query head h.
// Heads [h, h1) of queries [q0, q1) of sequence seq (decode tasks take several heads at once).
struct AttentionTask { int32_t seq, h, q0, q1, h1; };

struct KernelTable {
  const char* isa;
  // out[t, n0:n1] for all t: x . w[n0:n1]^T (+ bias). Per-element K order is fixed (batch invariant).
  void (*matmul)(const MatmulArgs& a, int64_t n0, int64_t n1);
  // Rows [r0, r1): out = x / rms(x) * w.
  void (*rmsnorm)(float* out, const float* x, const void* w, DType wd, int64_t D, float eps, int64_t r0, int64_t r1);
  // Rows [r0, r1): residual += x; out = rmsnorm(residual) * w.
  void (*add_rmsnorm)(float* out, float* residual, const float* x, const void* w, DType wd, int64_t D, float eps,
                      int64_t r0, int64_t r1);
  // Elements [i0, i1) of the flattened [T, I] output.
  void (*silu_mul)(float* out, const float* gate_up, int64_t I, int64_t r0, int64_t r1);
  // Row copies with dtype conversion to f32: out[r, :] = src[idx[r], :] for r in [r0, r1).
  void (*gather_rows)(float* out, const void* src, DType sd, const int32_t* idx, int64_t D, int64_t r0, int64_t r1);
  // out[s] = argmax logits[s, :] (lowest index on ties), rows [r0, r1).
  void (*argmax)(int32_t* out, const float* logits, int64_t V, int64_t r0, int64_t r1);
  // Attention over a list of tasks [t0, t1).
  void (*attention)(const AttentionArgs& a, const AttentionTask* tasks, int64_t t0, int64_t t1);
  // out[t, n0:n1] = xd[t] * scales[n] * (xq . wq[n0:n1]^T) (+ bias): exact integer dots, so identical
  // for every T, tile, thread split and ISA.
  void (*matmul_q8)(const MatmulQ8Args& a, int64_t n0, int64_t n1);
  // Rows [r0, r1) of x [*, K] -> matmul_q8's int16 codes [*, ldq] and row scales (quantize_rows16.cpp);
  // the same codes on every table.
  void (*quantize_rows16)(const float* x, int64_t K, int64_t ldq, int16_t* q, float* d, int64_t r0, int64_t r1);
  // Rows [r0, r1) of x [*, K] -> per-32 int8 codes, f32 scales and code sums (ops-ggml.ts spec).
  void (*quantize_act)(const float* x, int8_t* q, float* d, int32_t* s, int64_t K, int64_t r0, int64_t r1);
  // out[t, n0:n1] for all t on ggml blocks (matmul_ggml.cpp); batch-invariant per element.
  void (*matmul_ggml)(const MatmulGgmlArgs& a, int64_t n0, int64_t n1);
  // out[r, :] = decoded row ids[r] of w, rows [r0, r1), bit-exact to the spec.
  void (*dequant_rows)(float* out, const uint8_t* w, int32_t type, int64_t row_bytes, int64_t K, const int32_t* ids,
                       int64_t r0, int64_t r1);
  // Only on tables whose matmul_q8 takes packed activations (AMX), else null: whether a [T, K] matmul
  // goes that way, and the packing of token blocks [tb0, tb1) of 16 rows of codes into dst
  // (T / 16 * K * kQ8PackBytesPerK bytes). matmul_q8 computes the same exact dots with or without them.
  bool (*q8_pack_usable)(int64_t T, int64_t K);
  void (*q8_pack)(const int16_t* xq, int64_t ldx, int64_t K, uint8_t* dst, int64_t tb0, int64_t tb1);
  // Likewise for matmul_ggml (AMX tables, else null): whether ggml `type` runs on the tiles (then N
  // splits in multiples of 16), and the packing of 16-token blocks [tb0, tb1) of the codes, scales and
  // code sums (zero padded past T; (T + 15) / 16 * (K / 32) * kGgmlPackBlockBytes bytes), needed for T >= 2.
  bool (*ggml_amx_type)(int32_t type);
  void (*ggml_pack)(const int8_t* xq, const float* xd, const int32_t* xs, int64_t T, int64_t K, uint8_t* dst, int64_t tb0,
                    int64_t tb1);
};

const KernelTable* kernels_avx512();
const KernelTable* kernels_avx2();
// As above with matmul_ggml and matmul_q8 on VNNI dot products (AVX512-VNNI / AVX-VNNI); isa "avx512vnni" / "avx2vnni".
const KernelTable* kernels_avx512_vnni();
const KernelTable* kernels_avx2_vnni();
// kernels_avx512_vnni() with matmul_q8 on AMX tiles for prefill and Q8_0 / Q4_K / Q6_K matmul_ggml on them for every T (AMX-TILE + AMX-INT8 and the OS's
// permission for tile data, which dispatch.cpp requests); isa "avx512amx".
const KernelTable* kernels_avx512_amx();
const KernelTable* kernels_generic();

}}  // namespace tmill::cpu
