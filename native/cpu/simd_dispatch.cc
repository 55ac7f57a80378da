#include "simd_dispatch.h"

#include <cstdlib>
#include <cstring>

namespace rnnkit::cpu {

namespace {
SimdLevel detect() {
  SimdLevel level = SimdLevel::Baseline;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = SimdLevel::Avx2;
  if (level == SimdLevel::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    level = SimdLevel::Avx512;
#endif
  // A lower ceiling, for testing every variant on one machine.
  if (const char* env = std::getenv("RNNKIT_SIMD")) {
    if (std::strcmp(env, "baseline") == 0) level = SimdLevel::Baseline;
    else if (std::strcmp(env, "avx2") == 0 && level == SimdLevel::Avx512) level = SimdLevel::Avx2;
  }
  return level;
}
}  // namespace

SimdLevel simdLevel() {
  static const SimdLevel level = detect();
  return level;
}

const char* simdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Avx2: return "avx2";
    default: return "baseline";
  }
}

}  // namespace rnnkit::cpu
