// Run-time discovery of cuBLAS (see cublas_loader.h). RNNKIT_CUBLAS names the library to load (a soname or a path)
// when the default search does not find it.
#include "cublas_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace rnnkit::cuda {

namespace {

template <typename Fn>
Fn lookup(void* handle, const char* symbol) {
  // POSIX guarantees that a data pointer from dlsym can be converted to a function pointer.
  return reinterpret_cast<Fn>(dlsym(handle, symbol));
}

bool fileExists(const std::string& path) {
  return !path.empty() && access(path.c_str(), R_OK) == 0;
}

// Sonames, the major version this build's CUDA runtime belongs to first, then the others it can work with.
std::vector<std::string> sonames() {
  const int major = CUDART_VERSION / 1000;
  std::vector<std::string> names{"libcublas.so." + std::to_string(major)};
  for (int m : {13, 12, 11})
    if (m != major) names.push_back("libcublas.so." + std::to_string(m));
  names.emplace_back("libcublas.so");
  return names;
}

// Toolkit folders that are often not on the loader's search path.
std::vector<std::string> folders() {
  std::vector<std::string> dirs;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"}) {
    const char* v = std::getenv(var);
    if (v && *v) dirs.push_back(std::string(v) + "/lib64");
  }
#if defined(__aarch64__)
  dirs.emplace_back("/usr/local/cuda/targets/sbsa-linux/lib");
#else
  dirs.emplace_back("/usr/local/cuda/targets/x86_64-linux/lib");
#endif
  dirs.emplace_back("/usr/local/cuda/lib64");
  return dirs;
}

}  // namespace

Cublas::Cublas() {
  std::vector<std::string> candidates;
  const char* env = std::getenv("RNNKIT_CUBLAS");
  const bool explicitChoice = env && *env;
  if (explicitChoice) {
    candidates.emplace_back(env);
  } else {
    for (const std::string& name : sonames()) candidates.push_back(name);
    for (const std::string& dir : folders())
      for (const std::string& name : sonames())
        if (fileExists(dir + "/" + name)) candidates.push_back(dir + "/" + name);
  }

  std::string reasons;
  for (const std::string& lib : candidates) {
    // libcublas needs libcublasLt of the same version. Loaded by path, the loader may not find it on its own
    // search path: load it from the same folder first, globally, so the dependency resolves to it.
    const std::size_t slash = lib.rfind('/');
    if (slash != std::string::npos) {
      const std::string lt = lib.substr(0, slash) + "/libcublasLt" + lib.substr(slash + std::string("/libcublas").size());
      if (fileExists(lt)) dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL);
    }
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* err = dlerror();
      if (explicitChoice || slash != std::string::npos) reasons += (reasons.empty() ? "" : "; ") + std::string(err ? err : lib + ": dlopen failed");
      continue;
    }
    auto createFn = lookup<cublasCreateFn>(handle, "cublasCreate_v2");
    auto destroyFn = lookup<cublasDestroyFn>(handle, "cublasDestroy_v2");
    auto setStreamFn = lookup<cublasSetStreamFn>(handle, "cublasSetStream_v2");
    auto sgemmFn = lookup<cublasSgemmFn>(handle, "cublasSgemm_v2");
    if (!createFn || !destroyFn || !setStreamFn || !sgemmFn) {
      reasons += (reasons.empty() ? "" : "; ") + lib + " lacks cublasCreate_v2/cublasSgemm_v2";
      dlclose(handle);
      continue;
    }
    // Kept loaded for the life of the process: handles may be destroyed by finalizers at exit.
    create = createFn;
    destroy = destroyFn;
    setStream = setStreamFn;
    sgemm = sgemmFn;
    setMathMode = lookup<cublasSetMathModeFn>(handle, "cublasSetMathMode");
    getVersion = lookup<cublasGetVersionFn>(handle, "cublasGetVersion_v2");
    getStatusString = lookup<cublasGetStatusStringFn>(handle, "cublasGetStatusString");
    detail_ = lib;
    return;
  }
  if (explicitChoice) {
    detail_ = "RNNKIT_CUBLAS=" + std::string(env) + ": " + (reasons.empty() ? "unusable" : reasons);
  } else {
    std::string tried;
    for (const std::string& name : sonames()) tried += (tried.empty() ? "" : ", ") + name;
    detail_ = "none of " + tried +
              " is on the library search path or in the CUDA toolkit's lib64 (set RNNKIT_CUBLAS to its path)" +
              (reasons.empty() ? std::string() : ": " + reasons);
  }
}

const Cublas& Cublas::instance() {
  static const Cublas* cublas = new Cublas();  // never destroyed, like the library it holds
  return *cublas;
}

std::string Cublas::statusText(cublasStatus_t status) const {
  if (getStatusString) {
    const char* s = getStatusString(status);
    if (s) return s;
  }
  return "cuBLAS status " + std::to_string(status);
}

}  // namespace rnnkit::cuda
