// Device selection: the backend a new Network runs on (spec.device), and rnnkit.devices(). Header-only so that the
// node-gyp build (binding.gyp, CPU only) needs no new source file; the CUDA parts are compiled in only with
// RNNKIT_WITH_CUDA (CMake with -DRNNKIT_CUDA=ON).
#pragma once

#include <napi.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "../core/backend.h"
#include "../core/error.h"
#include "../cpu/thread_pool.h"
#if defined(RNNKIT_WITH_CUDA)
#include "../cuda/cuda_device.h"
#endif

namespace rnnkit::addon {

// "cpu" (the default), "cuda" (device 0) or "cuda:N". The CPU backend is process-wide and never destroyed; a CUDA
// backend is made for the network alone (its own stream and memory) and lives as long as the network and its streams.
inline std::shared_ptr<Backend> backendForDevice(const std::string& device) {
  if (device == "cpu") return std::shared_ptr<Backend>(&cpuBackend(), [](Backend*) {});
  int index = -1;
  if (device == "cuda") {
    index = 0;
  } else if (device.size() > 5 && device.compare(0, 5, "cuda:") == 0 && device.size() <= 8 &&
             device.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::atoi(device.c_str() + 5);
  } else {
    fail(ErrorCode::Argument, "unknown device '" + device + "': expected 'cpu' or 'cuda' (or 'cuda:N')");
  }
#if defined(RNNKIT_WITH_CUDA)
  return cuda::createBackend(index);
#else
  (void)index;
  fail(ErrorCode::Device,
       "this build of rnnkit has no CUDA support: build one with npm run build:cuda and load it with "
       "RNNKIT_BINARY=cuda (docs/cuda.md)");
#endif
}

// The spec's `device` (absent: "cpu").
inline std::shared_ptr<Backend> backendForSpec(const Napi::Value& spec) {
  if (!spec.IsObject()) return backendForDevice("cpu");
  Napi::Value device = spec.As<Napi::Object>().Get("device");
  if (device.IsUndefined()) return backendForDevice("cpu");
  if (!device.IsString()) fail(ErrorCode::Type, "spec.device must be a string ('cpu' or 'cuda')");
  return backendForDevice(device.As<Napi::String>().Utf8Value());
}

// rnnkit.devices(): [{ type: 'cpu', ... }, { type: 'cuda', index, name, memory, computeCapability }...], listing a
// CUDA device only when it can be used (a CUDA build, a driver that sees it, and cuBLAS).
inline Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("type", "cpu");
  cpu.Set("name", "cpu");
  cpu.Set("threads", cpu::ThreadPool::instance().size());
  cpu.Set("gemm", cpuBackend().gemmName());
  list.Set(n++, cpu);
#if defined(RNNKIT_WITH_CUDA)
  const cuda::Availability a = cuda::probe();
  if (a.cublas) {
    for (const cuda::DeviceInfo& d : a.devices) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("type", "cuda");
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("memory", (double)d.memory);
      o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
      list.Set(n++, o);
    }
  }
#endif
  return list;
}

}  // namespace rnnkit::addon
