// The arithmetic peak of this machine's cores, for the benchmark harness: how many float32 FLOP/s (and int8 MAC/s)
// the widest vector instructions the CPU runs can deliver when nothing but registers is touched. A workload's GFLOP/s
// over this figure says how much of the machine a library uses, whoever it is compared with.
#pragma once

#include <cstdint>

namespace rnnkit::cpu {

class ThreadPool;

struct PeakRun {
  double operations;  // FLOPs (float32: two per lane of an FMA) or int8 multiply-accumulates, summed over threads
  double checksum;    // depends on every accumulator, so that no loop can be optimized away
};

// `iterations` rounds of independent FMA chains on every thread of the pool (one share per thread, one hand-off,
// like readAcrossPool), with the widest vectors simdLevel() allows: AVX-512 (16 lanes), AVX2+FMA (8), else plain
// multiply-adds in the baseline instruction set (which the compiler may pack into SSE vectors; counted per float). Enough accumulators in flight to cover the FMA latency of two pipes.
PeakRun peakFloat32AcrossPool(std::int64_t iterations, ThreadPool& pool);
// The kernel that peakFloat32AcrossPool runs here: "avx512", "avx2" or "baseline".
const char* peakFloat32KernelName();

// The same for int8 products accumulated in int32 (u8 x s8, four products per 32-bit lane, as the int8 kernels
// multiply): AVX-512 VNNI's vpdpbusd where the CPU has it (64 MACs per instruction), else AVX2's vpmaddubsw +
// vpmaddwd + vpaddd (32 MACs per three instructions); operations counts multiply-accumulates (1 MAC = 2 ops).
PeakRun peakInt8AcrossPool(std::int64_t iterations, ThreadPool& pool);
// "avx512vnni", "avx2" or "" (no int8 route: peakInt8AcrossPool then does nothing and returns 0 operations).
const char* peakInt8KernelName();

}  // namespace rnnkit::cpu
