// Run-time discovery of a system cblas. Loading it with dlopen (instead of linking) keeps one prebuilt binary
// working on machines with or without a BLAS, and lets RNNKIT_BLAS pick or disable one without rebuilding. Whether
// one is looked for at all when RNNKIT_BLAS is unset is the GEMM rule's (gemm_select.cc, builtinGemmIsDefault).

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gemm.h"

#if !defined(_WIN32)
#include <dlfcn.h>
#define RNNKIT_HAVE_DLOPEN 1
#endif

namespace rnnkit::cpu {

namespace {

// cblas enum values, fixed by the cblas ABI.
constexpr int kCblasRowMajor = 101;
constexpr int kCblasNoTrans = 111;
constexpr int kCblasTrans = 112;

#if defined(RNNKIT_HAVE_DLOPEN)
std::vector<std::string> defaultCandidates() {
#if defined(__APPLE__)
  return {"/System/Library/Frameworks/Accelerate.framework/Accelerate", "libopenblas.dylib", "libblis.dylib"};
#else
  // Optimized implementations first; the generic libblas.so.3 is last because on many systems it is the slow
  // reference implementation (it is only taken when it exports cblas_sgemm, e.g. as an OpenBLAS alternative).
  return {"libopenblas.so.0", "libopenblas.so", "libblis.so.4", "libblis.so", "libmkl_rt.so.2",
          "libmkl_rt.so",     "libcblas.so.3",  "libblas.so.3"};
#endif
}

// RNNKIT_BLAS=openblas|blis|mkl: that implementation's usual file names.
std::vector<std::string> familyCandidates(const std::string& family) {
#if defined(__APPLE__)
  if (family == "openblas") return {"libopenblas.dylib"};
  if (family == "blis") return {"libblis.dylib"};
  if (family == "mkl") return {"libmkl_rt.dylib", "libmkl_rt.2.dylib"};
#else
  if (family == "openblas") return {"libopenblas.so.0", "libopenblas.so"};
  if (family == "blis") return {"libblis.so.4", "libblis.so"};
  if (family == "mkl") return {"libmkl_rt.so.2", "libmkl_rt.so"};
#endif
  return {};
}

template <typename Fn>
Fn lookup(void* handle, const char* symbol) {
  // POSIX guarantees that a data pointer from dlsym can be converted to a function pointer.
  return reinterpret_cast<Fn>(dlsym(handle, symbol));
}
#endif

}  // namespace

SystemBlas::SystemBlas() {
#if !defined(RNNKIT_HAVE_DLOPEN)
  detail_ = "dynamic loading is not supported on this platform";
#else
  // RNNKIT_BLAS: unset or "auto" -> the default rule; "none"/"builtin" -> never; "system" -> search the usual
  // libraries; "openblas", "blis", "mkl" -> that one; anything else -> a path or soname.
  std::vector<std::string> candidates;
  const char* raw = std::getenv("RNNKIT_BLAS");
  const std::string env = raw ? raw : "";
  bool explicitChoice = !env.empty() && env != "auto" && env != "system";
  if (env == "none" || env == "builtin") {
    detail_ = "disabled by RNNKIT_BLAS=" + env;
    return;
  }
  if (env.empty() || env == "auto") {
    if (builtinGemmIsDefault()) {
      detail_ = std::string("not looked for: the built-in GEMM (") + builtinKernelName() +
                " kernel) is the default on this CPU; RNNKIT_BLAS=system (or openblas, blis, mkl, a path) loads one";
      return;
    }
    candidates = defaultCandidates();
  } else if (env == "system") {
    candidates = defaultCandidates();
  } else if (!familyCandidates(env).empty()) {
    candidates = familyCandidates(env);
  } else {
    candidates.emplace_back(env);
  }

  // OpenBLAS's threads spin for about 2^28 cycles (a tenth of a second) after each call before they sleep. Between
  // its large products the time loop runs on this library's own pool, and on a machine with few cores those spinning
  // threads take the cores that the pool needs. Unless the user chose otherwise, they sleep at once instead (the
  // library reads this when it is loaded; waking them costs microseconds against products of milliseconds).
  // The addon loads the BLAS while it is being required, on the main thread, so nothing else reads the
  // environment while it changes.
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", /*overwrite=*/0);

  std::string reasons;
  for (const std::string& lib : candidates) {
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      if (explicitChoice) {
        const char* err = dlerror();
        reasons += (reasons.empty() ? "" : "; ") + std::string(err ? err : "dlopen failed");
      }
      continue;
    }
    auto sgemm = lookup<SgemmFn>(handle, "cblas_sgemm");
    if (!sgemm) {
      reasons += (reasons.empty() ? "" : "; ") + lib + " has no cblas_sgemm";
      // The handle is dropped on purpose only when unused; libraries we keep are never closed, because their
      // worker threads may still be running at process exit.
      dlclose(handle);
      continue;
    }
    sgemm_ = sgemm;
    detail_ = lib;
    // Identify the implementation by what it exports rather than by file name: libblas.so.3 is often an
    // alternatives link to OpenBLAS, and RNNKIT_BLAS may name any path.
    if (auto f = lookup<SetThreadsFn>(handle, "openblas_set_num_threads")) {
      name_ = "openblas";
      setThreads_ = f;
    } else if (auto g = lookup<SetThreadsFn>(handle, "bli_thread_set_num_threads")) {
      name_ = "blis";
      setThreads_ = g;
      setThreadsTakes64_ = true;
    } else if (auto h = lookup<SetThreadsFn>(handle, "MKL_Set_Num_Threads")) {
      name_ = "mkl";
      setThreads_ = h;
    } else if (lib.find("Accelerate") != std::string::npos || lib.find("vecLib") != std::string::npos) {
      name_ = "accelerate";
    } else {
      name_ = "cblas";
    }
    return;
  }
  if (explicitChoice) {
    detail_ = "RNNKIT_BLAS=" + env + " could not be used: " + (reasons.empty() ? "unknown" : reasons);
  } else {
    detail_ = "no system BLAS found" + (reasons.empty() ? std::string() : " (" + reasons + ")");
  }
#endif
}

const SystemBlas& SystemBlas::instance() {
  // Leaked for the same reason as the thread pool: nothing to tear down at exit, and no destructor-order races.
  static const SystemBlas* blas = new SystemBlas();
  return *blas;
}

void SystemBlas::sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc) const {
  if (!sgemm_ || M <= 0 || N <= 0) return;
  if (K <= 0) {
    // Not every BLAS accepts K == 0; its meaning is C = beta * C (beta == 0 clears, even over NaN).
    for (int i = 0; i < M; ++i) {
      float* cr = C + static_cast<std::ptrdiff_t>(i) * ldc;
      for (int j = 0; j < N; ++j) cr[j] = beta == 0.f ? 0.f : beta * cr[j];
    }
    return;
  }
  sgemm_(kCblasRowMajor, transA ? kCblasTrans : kCblasNoTrans, transB ? kCblasTrans : kCblasNoTrans, M, N, K, alpha,
         A, lda, B, ldb, beta, C, ldc);
}

void SystemBlas::setThreads(int n) const {
  if (!setThreads_ || n < 1) return;
  if (setThreadsTakes64_) {
    // Through void(*)(): the generic function pointer type, which casts to any other without a warning.
    using AnyFn = void (*)();
    reinterpret_cast<SetThreads64Fn>(reinterpret_cast<AnyFn>(setThreads_))(static_cast<long long>(n));
  } else {
    setThreads_(n);
  }
}

}  // namespace rnnkit::cpu
