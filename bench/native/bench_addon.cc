// The benchmark harness's own native module (never part of the npm package): the machine's floors and ceilings
// measured with the project's CPU kernels. benchGemm times the GEMM the networks run (the system BLAS or the built-in
// kernel, by the backend's own rule, gemmInUse) or the built-in kernel alone; benchRead times a plain read of a
// buffer across the pool, the floor of a batch-1 step that reads every weight once; benchPeak times register-only
// multiply-adds on every thread (float32 FMAs, int8 dot products), the arithmetic ceiling of any product. All are
// synchronous: they block the event loop while they run, which is what a harness wants and what a library entry
// point must never do.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../native/cpu/gemm.h"
#include "../../native/cpu/thread_pool.h"
#include "peak_bench.h"
#include "read_bench.h"

namespace {

using rnnkit::cpu::ThreadPool;

[[noreturn]] void valueError(Napi::Env env, const std::string& message) {
  Napi::Error e = Napi::RangeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_RNNKIT_VALUE"));
  throw e;
}

// An integer argument in [lo, hi], or ERR_RNNKIT_VALUE naming the function and the argument.
double integerArg(const Napi::CallbackInfo& info, std::size_t i, const char* fn, const char* name, double lo,
                  double hi) {
  const double v = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= lo && v <= hi) || std::floor(v) != v)
    valueError(info.Env(), std::string(fn) + ": " + name + " must be an integer in [" +
                               std::to_string((long long)lo) + ", " + std::to_string((long long)hi) + "]");
  return v;
}

bool boolOption(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

struct Timings {
  double bestSeconds, medianSeconds;
};

// One untimed warm-up call of `run`, then `reps` timed calls.
Timings timeCalls(int reps, const std::function<void()>& run) {
  run();
  std::vector<double> times;
  times.reserve(reps);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
  return {times.front(), median};
}

// benchGemm(M, N, K, repetitions, options?) -> { bestSeconds, medianSeconds, gflops, gemm, threads }: times
// C[M,N] = A[M,K] x op(B), op(B) = B^T with options.transB, through the GEMM the networks use, or the built-in
// kernel with options.builtin, or with options.packedB the built-in kernel on op(B) packed once beforehand (as a
// recurrent layer's per-step product runs: the packing is not timed). gflops = 2*M*N*K / bestSeconds.
Napi::Value BenchGemm(const Napi::CallbackInfo& info) {
  auto intArg = [&](std::size_t i, const char* name, double lo, double hi) {
    return (int)integerArg(info, i, "benchGemm", name, lo, hi);
  };
  const int M = intArg(0, "M", 1, 65536), N = intArg(1, "N", 1, 65536), K = intArg(2, "K", 1, 65536);
  const int reps = intArg(3, "repetitions", 1, 100000);
  bool transB = false, useBuiltin = false, packedB = false;
  if (info.Length() > 4 && info[4].IsObject()) {
    transB = boolOption(info[4].As<Napi::Object>(), "transB");
    useBuiltin = boolOption(info[4].As<Napi::Object>(), "builtin");
    packedB = boolOption(info[4].As<Napi::Object>(), "packedB");
  }
  if ((double)M * K + (double)K * N + (double)M * N > 512.0 * 1024 * 1024)
    valueError(info.Env(), "benchGemm: the matrices would exceed 2 GiB");
  std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N, 0.f);
  uint32_t s = 12345;
  auto fill = [&](std::vector<float>& v) {
    for (float& x : v) { s = s * 1664525u + 1013904223u; x = (float)(s >> 8) / 16777216.f - 0.5f; }
  };
  fill(A);
  fill(B);
  const int ldb = transB ? K : N;  // op(B) = B^T when transB: B stored as [N,K]
  // builtinPackedBFloats is 0 where the kernel reads op(B) in place for so few rows: then there is nothing to pack.
  std::vector<float> packed(packedB ? rnnkit::cpu::builtinPackedBFloats(transB, N, K, M) : 0);
  if (!packed.empty()) rnnkit::cpu::builtinPackB(transB, N, K, B.data(), ldb, packed.data());
  auto run = [&] {
    if (!packed.empty())
      rnnkit::cpu::builtinSgemmPackedB(M, N, K, 1.f, A.data(), K, packed.data(), 0.f, C.data(), N,
                                       ThreadPool::instance());
    else if (useBuiltin || packedB)
      rnnkit::cpu::builtinSgemm(false, transB, M, N, K, 1.f, A.data(), K, B.data(), ldb, 0.f, C.data(), N,
                                ThreadPool::instance());
    else
      rnnkit::cpu::gemmInUse(false, transB, M, N, K, 1.f, A.data(), K, B.data(), ldb, 0.f, C.data(), N);
  };
  const Timings t = timeCalls(reps, run);
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestSeconds", t.bestSeconds);
  o.Set("medianSeconds", t.medianSeconds);
  o.Set("gflops", 2.0 * M * N * K / std::max(t.bestSeconds, 1e-12) / 1e9);
  o.Set("gemm", useBuiltin || packedB ? std::string(packed.empty() ? "builtin-" : "builtin-packed-") + rnnkit::cpu::builtinKernelName() : rnnkit::cpu::gemmInUseName());
  o.Set("threads", ThreadPool::instance().size());
  return o;
}

// benchRead(bytes, repetitions): one pass over a buffer of `bytes` split across the pool, timed `repetitions` times
// after a warm-up pass (so that a buffer that fits the caches is read from them, as a step's weights are).
Napi::Value BenchRead(const Napi::CallbackInfo& info) {
  const std::size_t floats =
      (std::size_t)(integerArg(info, 0, "benchRead", "bytes", 64, 1024.0 * 1024 * 1024) / sizeof(float));
  const int reps = (int)integerArg(info, 1, "benchRead", "repetitions", 1, 1000000);
  float* data = static_cast<float*>(std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64));
  if (!data) valueError(info.Env(), "benchRead: out of memory");
  for (std::size_t i = 0; i < floats; ++i) data[i] = (float)(i % 7) * 0.125f;
  float sink = 0.f;
  const Timings t = timeCalls(reps, [&] { sink += rnnkit::cpu::readAcrossPool(data, floats, ThreadPool::instance()); });
  std::free(data);
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestSeconds", t.bestSeconds);
  o.Set("medianSeconds", t.medianSeconds);
  o.Set("gbPerSecond", (double)floats * sizeof(float) / std::max(t.bestSeconds, 1e-12) / 1e9);
  o.Set("threads", ThreadPool::instance().size());
  o.Set("checksum", sink);
  return o;
}

// benchPeak(type, iterations, repetitions) -> { bestSeconds, medianSeconds, perSecond, unit, kernel, threads }:
// `iterations` rounds of register-only multiply-adds on every thread of the pool (peak_bench.h), timed
// `repetitions` times after a warm-up. type 'float32': perSecond in GFLOP/s (an FMA is 2 FLOPs); type 'int8': in
// giga int8 multiply-accumulates per second (u8 x s8 into int32), kernel '' and perSecond 0 where the CPU has no
// int8 vector route.
Napi::Value BenchPeak(const Napi::CallbackInfo& info) {
  const std::string type = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (type != "float32" && type != "int8") valueError(info.Env(), "benchPeak: type must be 'float32' or 'int8'");
  const auto iterations = (std::int64_t)integerArg(info, 1, "benchPeak", "iterations", 1, 1e12);
  const int reps = (int)integerArg(info, 2, "benchPeak", "repetitions", 1, 100000);
  const bool fp = type == "float32";
  ThreadPool& pool = ThreadPool::instance();
  double operations = 0, checksum = 0;
  const Timings t = timeCalls(reps, [&] {
    const rnnkit::cpu::PeakRun r = fp ? rnnkit::cpu::peakFloat32AcrossPool(iterations, pool)
                                      : rnnkit::cpu::peakInt8AcrossPool(iterations, pool);
    operations = r.operations;
    checksum += r.checksum;
  });
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestSeconds", t.bestSeconds);
  o.Set("medianSeconds", t.medianSeconds);
  o.Set("perSecond", operations / std::max(t.bestSeconds, 1e-12) / 1e9);
  o.Set("unit", fp ? "GFLOP/s" : "G int8 MAC/s");
  o.Set("kernel", fp ? rnnkit::cpu::peakFloat32KernelName() : rnnkit::cpu::peakInt8KernelName());
  o.Set("threads", pool.size());
  o.Set("checksum", checksum);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("benchGemm", Napi::Function::New(env, BenchGemm, "benchGemm"));
  exports.Set("benchRead", Napi::Function::New(env, BenchRead, "benchRead"));
  exports.Set("benchPeak", Napi::Function::New(env, BenchPeak, "benchPeak"));
  return exports;
}

}  // namespace

NODE_API_MODULE(rnnkit_bench, Init)
