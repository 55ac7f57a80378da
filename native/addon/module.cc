// The module's entry point: the Network class and the process-level queries.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "../core/error.h"
#include "../core/sampling.h"
#include "js_convert.h"
#include "../cpu/cpu_backend.h"
#include "../core/device_buffer.h"
#include "../cpu/gemm.h"
#include "../cpu/read_bench.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "device.h"
#include "js_errors.h"
#include "network_handle.h"
#include "safetensors_js.h"
#include "stream_handle.h"

namespace rnnkit::addon {

namespace {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const cpu::SystemBlas& blas = cpu::SystemBlas::instance();
  o.Set("device", "cpu");
  o.Set("gemm", cpuBackend().gemmName());
  o.Set("blas", blas.available() ? blas.name() : std::string("none"));
  o.Set("blasDetail", blas.detail());
  o.Set("builtinKernel", cpu::builtinKernelName());
  o.Set("threads", cpu::ThreadPool::instance().size());
  o.Set("hardwareThreads", (double)std::thread::hardware_concurrency());
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(n >= 1 && n <= 1024) || (double)(int)n != n)
      fail(ErrorCode::Value, "setThreads needs an integer in [1, 1024]");
    cpu::ThreadPool::instance().resize((int)n);
    cpu::SystemBlas::instance().setThreads((int)n);
    return info.Env().Undefined();
  });
}

Napi::Value SampleIndex(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    std::vector<float> scores = readFloat32(info.Length() > 0 ? info[0] : info.Env().Undefined(), "scores");
    SamplingOptions o;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      Napi::Object opts = requireObject(info[1], "options");
      o.temperature = optionalNumber(opts, "temperature", 1.0);
      o.topK = optionalInt(opts, "topK", 0);
      o.topP = optionalNumber(opts, "topP", 1.0);
      o.probabilities = optionalBool(opts, "probabilities", false);
    }
    if (info.Length() < 3 || !info[2].IsNumber()) fail(ErrorCode::Type, "the uniform draw u must be a number");
    return Napi::Number::New(info.Env(), sampleIndex(scores.data(), scores.size(), o, info[2].As<Napi::Number>().DoubleValue()));
  });
}

// An integer argument of a bench function in [lo, hi], or ERR_RNNKIT_VALUE naming the function and the argument.
double integerArg(const Napi::CallbackInfo& info, std::size_t i, const char* fn, const char* name, double lo,
                  double hi) {
  const double v = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= lo && v <= hi) || std::floor(v) != v)
    fail(ErrorCode::Value, std::string(fn) + ": " + name + " must be an integer in [" + std::to_string((long long)lo) +
                               ", " + std::to_string((long long)hi) + "]");
  return v;
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
// C[M,N] = A[M,K] x op(B) through the CPU backend's GEMM (the one the networks use: system BLAS or built-in), or the
// built-in kernel with options.builtin. One untimed warm-up call; gflops = 2*M*N*K / bestSeconds. For the
// benchmark harness (the machine's SGEMM roofline); synchronous, so it blocks the event loop while it runs.
Napi::Value BenchGemm(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    auto intArg = [&](std::size_t i, const char* name, double lo, double hi) {
      return (int)integerArg(info, i, "benchGemm", name, lo, hi);
    };
    const int M = intArg(0, "M", 1, 65536), N = intArg(1, "N", 1, 65536), K = intArg(2, "K", 1, 65536);
    const int reps = intArg(3, "repetitions", 1, 100000);
    bool transB = false, useBuiltin = false;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      Napi::Object opts = requireObject(info[4], "options");
      transB = optionalBool(opts, "transB", false);
      useBuiltin = optionalBool(opts, "builtin", false);
    }
    if ((double)M * K + (double)K * N + (double)M * N > 512.0 * 1024 * 1024)
      fail(ErrorCode::Value, "benchGemm: the matrices would exceed 2 GiB");
    std::vector<float> A((size_t)M * K), B((size_t)K * N), C((size_t)M * N, 0.f);
    uint32_t s = 12345;
    auto fill = [&](std::vector<float>& v) {
      for (float& x : v) { s = s * 1664525u + 1013904223u; x = (float)(s >> 8) / 16777216.f - 0.5f; }
    };
    fill(A);
    fill(B);
    const int ldb = transB ? K : N;  // op(B) = B^T when transB: B stored as [N,K]
    auto run = [&] {
      if (useBuiltin)
        cpu::builtinSgemm(false, transB, M, N, K, 1.f, A.data(), K, B.data(), ldb, 0.f, C.data(), N,
                          cpu::ThreadPool::instance());
      else
        cpuBackend().gemm(false, transB, M, N, K, 1.f, A.data(), K, B.data(), ldb, 0.f, C.data(), N);
    };
    const Timings t = timeCalls(reps, run);
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bestSeconds", t.bestSeconds);
    o.Set("medianSeconds", t.medianSeconds);
    o.Set("gflops", 2.0 * M * N * K / std::max(t.bestSeconds, 1e-12) / 1e9);
    o.Set("gemm", useBuiltin ? std::string("builtin-") + cpu::builtinKernelName() : cpuBackend().gemmName());
    o.Set("threads", cpu::ThreadPool::instance().size());
    return o;
  });
}

// benchRead(bytes, repetitions): one pass over a buffer of `bytes` split across the pool, timed `repetitions` times
// after a warm-up pass (so that a buffer that fits the caches is read from them, as a step's weights are).
Napi::Value BenchRead(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    const std::size_t floats =
        (std::size_t)(integerArg(info, 0, "benchRead", "bytes", 64, 1024.0 * 1024 * 1024) / sizeof(float));
    const int reps = (int)integerArg(info, 1, "benchRead", "repetitions", 1, 1000000);
    DeviceBuffer buffer(&cpuBackend());
    float* data = buffer.reserveFloats(floats);
    for (std::size_t i = 0; i < floats; ++i) data[i] = (float)(i % 7) * 0.125f;
    float sink = 0.f;
    const Timings t = timeCalls(reps, [&] { sink += cpu::readAcrossPool(data, floats, cpu::ThreadPool::instance()); });
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bestSeconds", t.bestSeconds);
    o.Set("medianSeconds", t.medianSeconds);
    o.Set("gbPerSecond", (double)floats * sizeof(float) / std::max(t.bestSeconds, 1e-12) / 1e9);
    o.Set("threads", cpu::ThreadPool::instance().size());
    o.Set("checksum", sink);
    return o;
  });
}

Napi::Value ErrorCodes(Napi::Env env) {
  const ErrorCode codes[] = {ErrorCode::Argument, ErrorCode::Type,     ErrorCode::Shape,     ErrorCode::Value,
                             ErrorCode::UnknownParam, ErrorCode::State, ErrorCode::Disposed, ErrorCode::Busy,
                             ErrorCode::Format,   ErrorCode::File,     ErrorCode::Device,   ErrorCode::OutOfMemory, ErrorCode::Internal};
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  for (ErrorCode c : codes) arr.Set(i++, errorCodeName(c));
  return arr;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Find the system BLAS now, on the thread that requires the addon, rather than inside the first job on a worker.
  cpu::SystemBlas::instance();
  auto* data = new AddonData();
  createPropertyKeys(env, data->keys);
  Napi::Function network = NetworkHandle::define(env);
  data->networkConstructor = Napi::Persistent(network);
  env.SetInstanceData<AddonData>(data);  // deleted by N-API when this environment is torn down
  exports.Set("Network", network);
  exports.Set("Stream", StreamHandle::define(env));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("errorCodes", ErrorCodes(env));
  exports.Set("sampleIndex", Napi::Function::New(env, SampleIndex, "sampleIndex"));
  exports.Set("benchGemm", Napi::Function::New(env, BenchGemm, "benchGemm"));
  exports.Set("benchRead", Napi::Function::New(env, BenchRead, "benchRead"));
  exports.Set("parseSafetensors", Napi::Function::New(env, ParseSafetensors, "parseSafetensors"));
  exports.Set("modelParameters", Napi::Function::New(env, ModelParameters, "modelParameters"));
  return exports;
}

}  // namespace rnnkit::addon

static Napi::Object InitRnnkit(Napi::Env env, Napi::Object exports) { return rnnkit::addon::Init(env, exports); }

NODE_API_MODULE(rnnkit, InitRnnkit)
