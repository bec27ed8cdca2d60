// A small pool of persistent worker threads (not libuv). The calling thread always takes part;
// workers spin briefly (PoolOptions::spin_us, default 50 us) after each job, then sleep on a
// condition variable. Tasks are claimed in chunks from one atomic counter tagged with the job's
// generation, so a descheduled worker can never stall a job: whoever is running claims the rest,
// and a late worker finds a newer generation and claims nothing. If the caller keeps waiting long
// for chunks a preempted worker holds (an oversubscribed machine), the pool runs the next jobs on
// the caller alone for a while, then tries the workers again.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace tmill { namespace cpu {

// Set by the caller (the CLI reads TOKENMILL_SPIN_US / TOKENMILL_POOL_SOLO); native code reads no env.
struct PoolOptions {
  int64_t spin_us = 50;       // how long an idle worker spins before it sleeps (0 = sleep at once)
  bool solo_enabled = true;   // the stall fallback to caller-only jobs (see run())
};

// One cache line each for the words that different threads write, so that a worker polling the
// claim word does not keep losing the line to the caller's bookkeeping and vice versa.
constexpr int kCacheLine = 64;

class ThreadPool {
 public:
  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);
  explicit ThreadPool(int num_threads, const PoolOptions& opts = PoolOptions());
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn over [0, num_tasks) in chunks of `grain` tasks; returns when every chunk is done.
  // `heavy`: see parallel_for.
  void run(int64_t num_tasks, int64_t grain, RangeFn fn, void* ctx, bool heavy = false);

  // `work` is the caller's rough count of multiply-adds (0: unknown). A heavy job (work >=
  // kHeavyWork, ~1 ms and up: prefill matmuls, the decode classifier) always runs on every thread
  // and stays out of the stall accounting: a preempted worker can delay it by one chunk at most
  // (the others claim the rest), while running it on the caller alone would halve it. Measured on a
  // 2-vCPU VM with steal: after a few decode steps tripped the fallback, 128-token prefills on 2
  // threads ran at the 1-thread rate (about 260 vs 450 tok/s for stories110M int8).
  static constexpr int64_t kHeavyWork = int64_t{1} << 23;
  template <class F>
  void parallel_for(int64_t num_tasks, int64_t grain, F&& f, int64_t work = 0) {
    const bool heavy = work >= kHeavyWork;
    if (num_threads() == 1 || num_tasks <= grain || (solo_jobs_left_ > 0 && !heavy)) {
      if (solo_jobs_left_ > 0 && num_tasks > grain) solo_jobs_left_--;
      if (num_tasks > 0) f(int64_t{0}, num_tasks);
      return;
    }
    using Fn = typename std::remove_reference<F>::type;
    run(num_tasks, grain, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); }, &f, heavy);
  }

 private:
  struct Job {
    RangeFn fn = nullptr;
    void* ctx = nullptr;
    int64_t num_tasks = 0;
    int64_t grain = 1;
  };
  void worker_main();
  void work(uint32_t gen);

  // Written by the caller only, read by workers after they see a new generation.
  alignas(kCacheLine) Job jobs_[4];
  // (generation << 32) | next task index: the word every thread polls and claims from.
  alignas(kCacheLine) std::atomic<uint64_t> claim_{0};
  alignas(kCacheLine) std::atomic<int64_t> done_{0};
  alignas(kCacheLine) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  // The caller's own state (never touched by workers).
  alignas(kCacheLine) uint32_t gen_ = 0;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t spin_ns_ = 50000;
  // Stall detector (see run()): stalled wait time and total time of recent parallel jobs.
  int64_t stall_ns_ = 0;
  int64_t window_ns_ = 0;
  int stalled_windows_ = 0;  // consecutive windows with stalls over 10%
  int solo_jobs_left_ = 0;
  bool solo_enabled_ = true;
};

}}  // namespace tmill::cpu
