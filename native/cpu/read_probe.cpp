// Read-bandwidth probe: 16-byte loads into 4 independent accumulators per thread (SSE2, the baseline
// of every x86-64 build), far above what memory delivers, so the figure is the memory's, not the loop's.
#include "read_probe.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tmill { namespace cpu {

namespace {
uint64_t sum_slice(const uint8_t* p, int64_t bytes) {
#if defined(__SSE2__)
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= bytes; i += 64) {
    a0 = _mm_add_epi64(a0, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i)));
    a1 = _mm_add_epi64(a1, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 16)));
    a2 = _mm_add_epi64(a2, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 32)));
    a3 = _mm_add_epi64(a3, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 48)));
  }
  alignas(16) uint64_t r[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(r), _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3)));
  return r[0] + r[1];
#else
  uint64_t s0 = 0, s1 = 0;
  for (int64_t i = 0; i + 16 <= bytes; i += 16) {
    uint64_t u, v;
    std::memcpy(&u, p + i, 8);
    std::memcpy(&v, p + i + 8, 8);
    s0 += u;
    s1 += v;
  }
  return s0 + s1;
#endif
}
}  // namespace

std::vector<double> probe_read_bandwidth(int num_threads, int64_t size_bytes, int reps) {
  std::vector<double> out;
  if (num_threads < 1) num_threads = 1;
  const int64_t slice = (size_bytes / num_threads) & ~int64_t{63};
  if (slice <= 0 || reps < 1) return out;
  void* mem = nullptr;
  if (posix_memalign(&mem, 2 << 20, static_cast<size_t>(slice * num_threads)) != 0) return out;
  uint8_t* buf = static_cast<uint8_t*>(mem);
  std::memset(buf, 1, static_cast<size_t>(slice * num_threads));  // fault every page in before timing
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < reps; r++) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 1; t < num_threads; t++) {
      ts.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) {
        }
        sink.fetch_add(sum_slice(buf + t * slice, slice), std::memory_order_relaxed);
      });
    }
    while (ready.load() < num_threads - 1) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    sink.fetch_add(sum_slice(buf, slice), std::memory_order_relaxed);
    for (auto& th : ts) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(static_cast<double>(slice * num_threads) / s / 1e9);
  }
  free(mem);
  if (sink.load() == 42) out.push_back(0);  // keeps the sums observable (never true for a 1-filled buffer)
  return out;
}

}}  // namespace tmill::cpu
