// The rate at which this machine's cores read memory, for the benchmark harness: a batch-1 step reads every weight
// once, so the time to read that many bytes, with nothing else done to them, is the floor of its latency.
#pragma once

#include <cstddef>

namespace rnnkit::cpu {

class ThreadPool;

// Seconds for one pass over `floats` values split in contiguous slices across the pool (one hand-off, like a
// step's products), each thread summing its slice with the widest vectors the CPU has. `sink` receives the sum so
// that the reads cannot be optimized away.
double timedReadPass(const float* data, std::size_t floats, ThreadPool& pool, float* sink);

}  // namespace rnnkit::cpu
