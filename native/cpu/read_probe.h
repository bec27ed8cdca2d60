// The machine's streaming read bandwidth, measured directly (bench only): what a DRAM-bound decode
// step can approach. Owns its buffer and threads; never touches the engine's pool.
#pragma once
#include <cstdint>
#include <vector>

namespace tmill { namespace cpu {

// Sums a freshly allocated, pre-touched buffer of size_bytes split over num_threads threads (each its
// own contiguous slice), reps times; returns the GB/s of each rep (1e9 bytes). Empty on allocation
// failure. Blocks for about reps * size_bytes / bandwidth seconds.
std::vector<double> probe_read_bandwidth(int num_threads, int64_t size_bytes, int reps);

}}  // namespace tmill::cpu
