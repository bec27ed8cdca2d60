// ThreadPool implementation: generation-tagged chunk claiming, spin-then-sleep workers.
#include "thread_pool.h"

#include <sched.h>

#include <chrono>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TM_PAUSE() _mm_pause()
#else
#define TM_PAUSE() ((void)0)
#endif

namespace tmill { namespace cpu {

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ThreadPool::ThreadPool(int num_threads, const PoolOptions& opts)
    : spin_ns_(opts.spin_us < 0 ? 0 : opts.spin_us * 1000), solo_enabled_(opts.solo_enabled) {
  for (int i = 1; i < num_threads; i++) workers_.emplace_back([this] { worker_main(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(uint32_t gen) {
  const Job& job = jobs_[gen & 3];
  for (;;) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(v >> 32) != gen) break;
    const int64_t idx = static_cast<int64_t>(v & 0xffffffffu);
    const int64_t n = job.num_tasks, grain = job.grain;
    RangeFn fn = job.fn;
    void* ctx = job.ctx;
    if (idx >= n) break;
    // Success means the job was still `gen` when claimed, so the fields read above are its own.
    if (!claim_.compare_exchange_weak(v, v + static_cast<uint64_t>(grain), std::memory_order_acq_rel)) continue;
    const int64_t end = idx + grain < n ? idx + grain : n;
    fn(ctx, idx, end);
    done_.fetch_add(end - idx, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t num_tasks, int64_t grain, RangeFn fn, void* ctx, bool heavy) {
  if (num_tasks <= 0) return;
  if (grain < 1) grain = 1;
  const uint32_t gen = ++gen_;
  Job& job = jobs_[gen & 3];
  job.fn = fn;
  job.ctx = ctx;
  job.num_tasks = num_tasks;
  job.grain = grain;
  done_.store(0, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lk(mu_); }
    cv_.notify_all();
  }
  const int64_t t0 = now_ns();
  work(gen);
  const int64_t t1 = now_ns();
  // A worker still holds a chunk. Spin briefly; then yield, so that on an oversubscribed machine a
  // preempted worker can run here instead of this thread burning the rest of its time slice.
  int spins = 0;
  while (done_.load(std::memory_order_acquire) < num_tasks) {
    if (++spins < 256) TM_PAUSE();
    else sched_yield();
  }
  // Stall accounting over windows of ~20 ms of parallel jobs: a wait above 30 us that exceeds the
  // caller's own work is a stall (a preempted worker holds a chunk). Stalls costing over 10% of two
  // windows in a row -> the next 512 jobs run on the caller alone (workers sleep), then workers are
  // retried. Two in a row, because a cloud vCPU loses a few ms to the hypervisor now and then: one
  // such burst sent a 2-thread stories110M f32 decode solo about 4 times per 64 tokens (20.4-21.6
  // tok/s vs 24.6-25.3 with the fallback off, 2-vCPU EPYC), while a core that another process keeps
  // busy stalls every window and still goes solo within ~40 ms.
  if (heavy) return;  // not evidence for or against the workers (parallel_for)
  const int64_t t2 = now_ns();
  const int64_t waited = t2 - t1;
  if (waited > 30000 && waited > t1 - t0) stall_ns_ += waited;
  window_ns_ += t2 - t0;
  if (window_ns_ > 20000000) {
    stalled_windows_ = stall_ns_ * 10 > window_ns_ ? stalled_windows_ + 1 : 0;
    if (solo_enabled_ && stalled_windows_ >= 2) {
      solo_jobs_left_ = 512;
      stalled_windows_ = 0;
    }
    stall_ns_ = 0;
    window_ns_ = 0;
  }
}

void ThreadPool::worker_main() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = static_cast<uint32_t>(claim_.load(std::memory_order_acquire) >> 32);
    if (g == seen) {
      const int64_t start = now_ns();
      int spins = 0;
      while ((g = static_cast<uint32_t>(claim_.load(std::memory_order_acquire) >> 32)) == seen) {
        TM_PAUSE();
        if (++spins == 64) {
          spins = 0;
          if (stop_.load(std::memory_order_relaxed) || now_ns() - start > spin_ns_) break;
        }
      }
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lk, [&] {
        return stop_.load() || static_cast<uint32_t>(claim_.load(std::memory_order_seq_cst) >> 32) != seen;
      });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      if (stop_.load()) return;
      g = static_cast<uint32_t>(claim_.load(std::memory_order_acquire) >> 32);
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = g;
    work(g);
  }
}

}}  // namespace tmill::cpu
