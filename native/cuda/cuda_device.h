// What the rest of rnnkit (the addon) sees of the CUDA backend: device discovery and a factory. No CUDA headers here,
// so that code compiled without the CUDA include paths can use it. Compiled in only with RNNKIT_WITH_CUDA.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "../core/backend.h"

namespace rnnkit::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::size_t memory = 0;  // total global memory in bytes
  int major = 0, minor = 0;  // compute capability
};

struct Availability {
  std::vector<DeviceInfo> devices;  // every device the driver reports
  bool cublas = false;              // cuBLAS could be loaded
  // Why CUDA cannot be used ("no CUDA device found (...)", "cuBLAS could not be loaded: ..."), or "" when it can.
  std::string reason;
};

// Asks the driver (cheap; never throws).
Availability probe();

// A backend of its own on device `index`: its own stream, cuBLAS handle and memory cache. Each Network gets one, so
// that two models never serialize on one stream and their memory is released with them.
// Throws ERR_RNNKIT_DEVICE when there is no such device or no cuBLAS.
std::shared_ptr<Backend> createBackend(int index);

}  // namespace rnnkit::cuda
