// CpuEngine: owns the aligned buffers tensors live in, the thread pool and the chosen ISA kernel
// table, and executes command streams (the op queue the TS backend records; format in op_abi.h,
// generated from src/runtime/cpu/cpu-op-abi.ts). Validates every buffer reference and every index
// read from tensors (token ids, slots, block ids) and reports a Status; never aborts.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../common/status.h"
#include "file_map.h"
#include "kernels.h"
#include "op_abi.h"
#include "thread_pool.h"

namespace tmill { namespace cpu {

// Picks the best kernel table this CPU supports; `force` ("avx512" | "avx2" | "generic" | null)
// overrides for tests when the CPU supports it.
const KernelTable* select_kernels(const char* force);

// Engine switches, set by the caller (the CLI reads TOKENMILL_CPU_PROFILE / TOKENMILL_CPU_HUGEPAGES).
struct EngineOptions {
  bool profile = false;   // accumulate per-op wall time and call counts
  bool hugepages = true;  // ask for transparent huge pages on buffers >= 2 MiB
};

class CpuEngine {
 public:
  CpuEngine(int num_threads, const KernelTable* kernels, const PoolOptions& pool = PoolOptions(),
            const EngineOptions& opts = EngineOptions());
  ~CpuEngine();
  // 64-byte aligned; returns the buffer id (>= 0) or a status on failure.
  Status alloc(int64_t bytes, int32_t* id, void** ptr);
  // A buffer over bytes [offset, offset + bytes) of a mapped file (no copy; read-only memory: only ever
  // an op input). It keeps the mapping alive until released.
  Status adopt_mapped(std::shared_ptr<FileMapping> mapping, int64_t offset, int64_t bytes, int32_t* id, void** ptr);
  Status release(int32_t id);
  Status execute(const int32_t* cmds, int64_t num_ints);
  const KernelTable* kernels() const { return kernels_; }
  int num_threads() const { return pool_.num_threads(); }
  int64_t allocated_bytes() const { return allocated_bytes_; }
  int64_t mapped_bytes() const { return mapped_bytes_; }
  void* buffer_ptr(int32_t id, int64_t byte_offset, int64_t bytes) const;
  // False for buffers over mapped files (PROT_READ: a write would fault).
  bool writable(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(buffers_.size()) && buffers_[id].mapping == nullptr;
  }
  // Per-op wall time (ns) and call counts, accumulated only with EngineOptions::profile.
  bool profiling() const { return profile_; }
  const int64_t* op_time_ns() const { return op_ns_; }
  const int64_t* op_calls() const { return op_calls_; }

 private:
  // mapping set: ptr points into it (not ours to free).
  struct Buffer { char* ptr = nullptr; int64_t bytes = 0; std::shared_ptr<FileMapping> mapping; };
  int32_t take_id();
  struct Ref { char* ptr; DType dtype; };
  Status ref(const int32_t* c, int64_t numel, Ref* out, bool allow_null = false) const;
  Status run_one(Op op, const int32_t* a, int64_t n);
  // One method per op of the table (op_abi.h); op_matmul_q8 is in engine_quant.cpp, the ggml ops in
  // engine_ggml.cpp, the rope/KV/attention ops in engine_attention.cpp.
#define TM_DECLARE_OP(code, method) Status method(const int32_t* a);
  TM_CPU_OPS(TM_DECLARE_OP)
#undef TM_DECLARE_OP
  Status rmsnorm(const int32_t* a, bool with_residual);

  const KernelTable* kernels_;
  ThreadPool pool_;
  std::vector<Buffer> buffers_;
  std::vector<int32_t> free_ids_;
  int64_t allocated_bytes_ = 0;  // heap buffers only
  int64_t mapped_bytes_ = 0;     // buffers over mapped files
  std::vector<AttentionTask> attn_tasks_;
  std::vector<float> rope_cs_;
  std::vector<int8_t> act_q_;     // matmulGgml activation codes [T, K]
  std::vector<float> act_d_;      // [T, K/32]
  std::vector<int32_t> act_s_;    // [T, K/32]
  std::vector<int16_t> act16_q_;  // matmulQ8 activation codes [T, ldx]
  std::vector<float> act16_d_;    // [T]
  std::vector<uint8_t> act_pack_;    // matmulGgml activations packed for AMX tiles (KernelTable::ggml_pack)
  std::vector<uint8_t> act16_pack_;  // the codes packed for the AMX tiles (KernelTable::q8_pack)
  bool profile_ = false;
  bool hugepages_ = true;
  int64_t op_ns_[kNumOps] = {0};
  int64_t op_calls_[kNumOps] = {0};
};

}}  // namespace tmill::cpu
