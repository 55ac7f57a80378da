// The rate at which this machine's cores read memory, for the benchmark harness: a batch-1 step reads every weight
// once, so the time to read that many bytes, with nothing else done to them, is the floor of its latency.
#pragma once

#include <cstddef>

namespace rnnkit::cpu {

class ThreadPool;

// One pass over `floats` values split in contiguous slices across the pool (one hand-off, like a step's products),
// each thread summing its slice with the widest vectors the CPU has. The sum is returned so that the reads cannot be
// optimized away.
float readAcrossPool(const float* data, std::size_t floats, ThreadPool& pool);

}  // namespace rnnkit::cpu
