// CpuEngine: buffer registry + command-stream executor. Each op validates its references and the
// indices it reads, then splits its range kernel over the pool. Work-size thresholds keep tiny ops
// (decode of small models) on the calling thread so they never wake the pool.
#include "engine.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tmill { namespace cpu {

namespace {
inline float as_f32(int32_t v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Below this many multiply-adds an op runs on the calling thread only.
constexpr int64_t kParallelMinWork = 1 << 15;
}  // namespace

CpuEngine::CpuEngine(int num_threads, const KernelTable* kernels, const PoolOptions& pool, const EngineOptions& opts)
    : kernels_(kernels), pool_(num_threads < 1 ? 1 : num_threads, pool), profile_(opts.profile), hugepages_(opts.hugepages) {}

CpuEngine::~CpuEngine() {
  for (auto& b : buffers_)
    if (b.mapping == nullptr) std::free(b.ptr);
}

Status CpuEngine::alloc(int64_t bytes, int32_t* id, void** ptr) {
  TM_CHECK_ARG(bytes >= 0, "alloc: negative size %lld", static_cast<long long>(bytes));
  const size_t rounded = static_cast<size_t>((bytes + 63) / 64 * 64 + 64);
  // Buffers of >= 2 MiB (KV cache layers, embeddings, weight matrices) are 2 MiB aligned and their
  // whole 2 MiB pages asked for transparent huge pages (best effort; THP is often 'madvise'-only):
  // streaming through 4 KiB pages costs a TLB miss every 4 KiB, and decode reads every weight and
  // the whole KV every step. 2 MiB, not more, because a mid-size model's per-layer matrices are
  // 2-8 MiB (stories110M: 2.4-7 MiB): on 4 KiB pages its f32 decode GEMV streams ~5% slower.
  // A first touch may then stall on the kernel's compaction: EngineOptions::hugepages = false turns it off.
  constexpr size_t kHugePage = size_t{2} << 20;
  const bool huge = hugepages_ && rounded >= kHugePage;
  void* p = nullptr;
  TM_CHECK(posix_memalign(&p, huge ? kHugePage : 64, rounded) == 0 && p != nullptr, kOutOfMemory,
           "alloc: cannot allocate %lld bytes", static_cast<long long>(bytes));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) (void)madvise(p, rounded / kHugePage * kHugePage, MADV_HUGEPAGE);  // the tail stays on small pages
#endif
  const int32_t i = take_id();
  buffers_[i] = {static_cast<char*>(p), bytes, nullptr};
  allocated_bytes_ += bytes;
  *id = i;
  *ptr = p;
  return Status::Ok();
}

int32_t CpuEngine::take_id() {
  if (!free_ids_.empty()) {
    const int32_t i = free_ids_.back();
    free_ids_.pop_back();
    return i;
  }
  buffers_.push_back({});
  return static_cast<int32_t>(buffers_.size()) - 1;
}

Status CpuEngine::adopt_mapped(std::shared_ptr<FileMapping> mapping, int64_t offset, int64_t bytes, int32_t* id, void** ptr) {
  TM_CHECK_ARG(mapping != nullptr, "allocMapped: no mapping");
  TM_CHECK_RANGE(mapping->contains(offset, bytes), "allocMapped: bytes [%lld, +%lld) lie outside the %lld-byte file",
                 static_cast<long long>(offset), static_cast<long long>(bytes), static_cast<long long>(mapping->size()));
  char* p = const_cast<char*>(mapping->data()) + offset;
  const int32_t i = take_id();
  buffers_[i] = {p, bytes, std::move(mapping)};
  mapped_bytes_ += bytes;
  *id = i;
  *ptr = p;
  return Status::Ok();
}

Status CpuEngine::release(int32_t id) {
  TM_CHECK_ARG(id >= 0 && id < static_cast<int32_t>(buffers_.size()) && buffers_[id].ptr != nullptr,
               "free: unknown buffer %d", id);
  if (buffers_[id].mapping != nullptr) mapped_bytes_ -= buffers_[id].bytes;
  else {
    std::free(buffers_[id].ptr);
    allocated_bytes_ -= buffers_[id].bytes;
  }
  buffers_[id] = {};
  free_ids_.push_back(id);
  return Status::Ok();
}

void* CpuEngine::buffer_ptr(int32_t id, int64_t off, int64_t bytes) const {
  if (id < 0 || id >= static_cast<int32_t>(buffers_.size())) return nullptr;
  const Buffer& b = buffers_[id];
  if (b.ptr == nullptr || off < 0 || bytes < 0 || off + bytes > b.bytes) return nullptr;
  return b.ptr + off;
}

Status CpuEngine::ref(const int32_t* c, int64_t numel, Ref* out, bool allow_null) const {
  const int32_t id = c[0];
  if (id < 0 && allow_null) { *out = {nullptr, DType::kF32}; return Status::Ok(); }
  TM_CHECK_ARG(dtype_valid(c[1]), "bad dtype code %d", c[1]);
  const DType d = static_cast<DType>(c[1]);
  const int64_t off = static_cast<int64_t>(static_cast<uint32_t>(c[2])) | (static_cast<int64_t>(c[3]) << 32);
  void* p = buffer_ptr(id, off, numel * dtype_bytes(d));
  TM_CHECK_ARG(p != nullptr, "tensor reference out of bounds (buffer %d, offset %lld, %lld elements)", id,
               static_cast<long long>(off), static_cast<long long>(numel));
  *out = {static_cast<char*>(p), d};
  return Status::Ok();
}

Status CpuEngine::execute(const int32_t* cmds, int64_t num_ints) {
  int64_t i = 0;
  while (i < num_ints) {
    TM_CHECK_ARG(i + 2 <= num_ints, "truncated command stream");
    const int32_t op = cmds[i], len = cmds[i + 1];
    TM_CHECK_ARG(len >= 2 && i + len <= num_ints, "bad command length %d", len);
    if (profile_ && op >= 1 && op < kNumOps) {
      const auto t0 = std::chrono::steady_clock::now();
      TM_RETURN_IF_ERROR(run_one(static_cast<Op>(op), cmds + i + 2, len - 2));
      op_ns_[op] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
      op_calls_[op]++;
    } else {
      TM_RETURN_IF_ERROR(run_one(static_cast<Op>(op), cmds + i + 2, len - 2));
    }
    i += len;
  }
  return Status::Ok();
}

Status CpuEngine::run_one(Op op, const int32_t* a, int64_t n) {
  const int o = static_cast<int>(op);
  TM_CHECK_ARG(o >= 1 && o < kNumOps && n == kOpPayloadInts[o], "bad op %d or payload length %lld", o, static_cast<long long>(n));
  switch (op) {
#define TM_OP_CASE(code, method) case Op::code: return method(a);
    TM_CPU_OPS(TM_OP_CASE)
#undef TM_OP_CASE
  }
  return make_status(StatusCode::kInternal, __FILE__, __LINE__, "unreachable");
}

Status CpuEngine::op_embedding(const int32_t* a) {
  const int64_t T = a[12], D = a[13], V = a[14];
  Ref out, table, ids;
  TM_RETURN_IF_ERROR(ref(a, T * D, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, V * D, &table));
  TM_RETURN_IF_ERROR(ref(a + 8, T, &ids));
  const int32_t* id = reinterpret_cast<const int32_t*>(ids.ptr);
  for (int64_t t = 0; t < T; t++)
    TM_CHECK_RANGE(id[t] >= 0 && id[t] < V, "embedding: token id %d at row %lld is outside [0, %lld)", id[t],
                   static_cast<long long>(t), static_cast<long long>(V));
  float* o = reinterpret_cast<float*>(out.ptr);
  const KernelTable* k = kernels_;
  pool_.parallel_for(T, T * D < kParallelMinWork ? T : ceil_div(kParallelMinWork, D),
                     [&](int64_t r0, int64_t r1) { k->gather_rows(o, table.ptr, table.dtype, id, D, r0, r1); });
  return Status::Ok();
}

Status CpuEngine::op_gather_rows(const int32_t* a) {
  const int64_t S = a[12], D = a[13], T = a[14];
  Ref out, x, rows;
  TM_RETURN_IF_ERROR(ref(a, S * D, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, T * D, &x));
  TM_RETURN_IF_ERROR(ref(a + 8, S, &rows));
  const int32_t* r = reinterpret_cast<const int32_t*>(rows.ptr);
  for (int64_t s = 0; s < S; s++)
    TM_CHECK_RANGE(r[s] >= 0 && r[s] < T, "gatherRows: row %d at %lld is outside [0, %lld)", r[s],
                   static_cast<long long>(s), static_cast<long long>(T));
  kernels_->gather_rows(reinterpret_cast<float*>(out.ptr), x.ptr, x.dtype, r, D, 0, S);
  return Status::Ok();
}

Status CpuEngine::op_rmsnorm(const int32_t* a) { return rmsnorm(a, false); }
Status CpuEngine::op_add_rmsnorm(const int32_t* a) { return rmsnorm(a, true); }

Status CpuEngine::rmsnorm(const int32_t* a, bool with_residual) {
  const int32_t* s = a + (with_residual ? 16 : 12);
  const int64_t R = s[0], D = s[1];
  const float eps = as_f32(s[2]);
  Ref out, res{nullptr, DType::kF32}, x, w;
  TM_RETURN_IF_ERROR(ref(a, R * D, &out));
  const int32_t* p = a + 4;
  if (with_residual) { TM_RETURN_IF_ERROR(ref(p, R * D, &res)); p += 4; }
  TM_RETURN_IF_ERROR(ref(p, R * D, &x));
  TM_RETURN_IF_ERROR(ref(p + 4, D, &w));
  float* o = reinterpret_cast<float*>(out.ptr);
  float* r = reinterpret_cast<float*>(res.ptr);
  const float* xp = reinterpret_cast<const float*>(x.ptr);
  const KernelTable* k = kernels_;
  const int64_t grain = R * D < kParallelMinWork ? R : ceil_div(kParallelMinWork / 2, D);
  if (with_residual)
    pool_.parallel_for(R, grain, [&](int64_t r0, int64_t r1) { k->add_rmsnorm(o, r, xp, w.ptr, w.dtype, D, eps, r0, r1); });
  else
    pool_.parallel_for(R, grain, [&](int64_t r0, int64_t r1) { k->rmsnorm(o, xp, w.ptr, w.dtype, D, eps, r0, r1); });
  return Status::Ok();
}

Status CpuEngine::op_matmul(const int32_t* a) {
  const int64_t T = a[16], K = a[17], N = a[18];
  Ref out, x, w, bias;
  TM_RETURN_IF_ERROR(ref(a, T * N, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, T * K, &x));
  TM_RETURN_IF_ERROR(ref(a + 8, N * K, &w));
  TM_RETURN_IF_ERROR(ref(a + 12, N, &bias, true));
  MatmulArgs m{reinterpret_cast<float*>(out.ptr), reinterpret_cast<const float*>(x.ptr), w.ptr, bias.ptr,
               w.dtype, bias.dtype, T, K, N};
  // Blocks of at most ~192 KiB of weights stay in L2 while all T rows pass over them (applied on
  // every path, the single-threaded one included). Parallel chunks: at most one block, and at
  // least ~8 chunks per thread so that dynamic claiming balances the threads.
  const int64_t row_bytes = K * dtype_bytes(w.dtype);
  // Decode (T <= 8) keeps chunks and blocks whole multiples of 8 rows: the AVX2/AVX-512 GEMV
  // streams 8 weight rows at once, and a 4-row remainder per chunk would stream at half the rate.
  const int64_t align = T <= 8 ? 8 : 4;
  int64_t block = (192 * 1024 / (row_bytes > 0 ? row_bytes : 1)) & ~(align - 1);
  if (block < align) block = align;
  // One x row reuses nothing from L2: a GEMV streams its whole range as one pass, so the row
  // prefetch runs on across what would be block edges (stream8's next-tile prefetch).
  if (T == 1) block = N;
  int64_t grain = (ceil_div(N, 8 * static_cast<int64_t>(pool_.num_threads())) + align - 1) & ~(align - 1);
  if (grain > block) grain = block;
  if (grain < align) grain = align;
  // Below ~64K multiply-adds a fork-join (~1-2 us) costs more than it saves. Decode weights come
  // from L3/DRAM (~30 / 15 GB/s per core), so 64K f32 MACs already take ~9-17 us.
  if (T * N * K < 2 * kParallelMinWork) grain = N;
  const KernelTable* k = kernels_;
  pool_.parallel_for(
      N, grain, [&](int64_t n0, int64_t n1) { for (int64_t c = n0; c < n1; c += block) k->matmul(m, c, c + block < n1 ? c + block : n1); },
      T * N * K);
  return Status::Ok();
}

Status CpuEngine::op_silu_mul(const int32_t* a) {
  const int64_t T = a[8], I = a[9];
  Ref out, gu;
  TM_RETURN_IF_ERROR(ref(a, T * I, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, T * 2 * I, &gu));
  float* o = reinterpret_cast<float*>(out.ptr);
  const float* g = reinterpret_cast<const float*>(gu.ptr);
  const KernelTable* k = kernels_;
  pool_.parallel_for(T, T * I < kParallelMinWork ? T : ceil_div(kParallelMinWork / 4, I),
                     [&](int64_t r0, int64_t r1) { k->silu_mul(o, g, I, r0, r1); });
  return Status::Ok();
}

Status CpuEngine::op_argmax(const int32_t* a) {
  const int64_t S = a[8], V = a[9];
  Ref out, l;
  TM_RETURN_IF_ERROR(ref(a, S, &out));
  TM_RETURN_IF_ERROR(ref(a + 4, S * V, &l));
  TM_CHECK_ARG(V > 0, "argmax: empty rows");
  int32_t* o = reinterpret_cast<int32_t*>(out.ptr);
  const float* lp = reinterpret_cast<const float*>(l.ptr);
  const KernelTable* k = kernels_;
  pool_.parallel_for(S, S * V < 4 * kParallelMinWork ? S : 1, [&](int64_t r0, int64_t r1) { k->argmax(o, lp, V, r0, r1); });
  return Status::Ok();
}

}}  // namespace tmill::cpu
