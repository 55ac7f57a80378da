// Standalone check of the CPU GEMM (built-in kernel and, when present, the system BLAS) and the thread pool.
// Built and run by run_gemm_test.sh. Exits non-zero on any failure; the last line is "N passed, M failed".
// After the correctness checks it prints a GFLOP/s table for the shapes this project uses (informational).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "../../native/cpu/gemm.h"
#include "../../native/cpu/thread_pool.h"

using rnnkit::cpu::builtinGemmIsDefault;
using rnnkit::cpu::builtinKernelName;
using rnnkit::cpu::builtinPackB;
using rnnkit::cpu::builtinPackBRows;
using rnnkit::cpu::builtinPanelWidth;
using rnnkit::cpu::builtinSgemmPackedBColumns;
using rnnkit::cpu::builtinPackedBFloats;
using rnnkit::cpu::builtinSgemm;
using rnnkit::cpu::builtinSgemmPackedB;
using rnnkit::cpu::SystemBlas;
using rnnkit::cpu::ThreadPool;

namespace {

int gPassed = 0;
int gFailed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++gPassed;
  } else {
    ++gFailed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

std::mt19937 gRng(12345);

float randf() { return std::uniform_real_distribution<float>(-1.f, 1.f)(gRng); }
int randi(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gRng); }

struct Case {
  bool ta, tb;
  int M, N, K;
  int padA, padB, padC;
  float alpha, beta;
  bool nanC;  // fill C with NaN (only meaningful with beta == 0)
};

std::string describe(const Case& c, const char* impl) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s ta=%d tb=%d M=%d N=%d K=%d pad=%d/%d/%d alpha=%g beta=%g%s", impl, c.ta, c.tb,
                c.M, c.N, c.K, c.padA, c.padB, c.padC, c.alpha, c.beta, c.nanC ? " nanC" : "");
  return buf;
}

using GemmFn = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);

void runBuiltin(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc) {
  builtinSgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ThreadPool::instance());
}

// B packed once (as the recurrent weights of a time loop are), then the product from the panels. The packed path
// takes op(A) untransposed, so a transposed A is copied out first.
void runPacked(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) {
  // Enough rows that the kernel never prefers reading B in place, so there is always something packed.
  const size_t floats = builtinPackedBFloats(tb, N, K, 1 << 20);
  std::vector<float> packed(std::max<size_t>(floats, 1), std::numeric_limits<float>::quiet_NaN());
  if (floats) builtinPackB(tb, N, K, B, ldb, packed.data());
  std::vector<float> a;
  if (ta) {
    a.resize(static_cast<size_t>(std::max(M, 1)) * std::max(K, 1));
    for (int i = 0; i < M; ++i)
      for (int k = 0; k < K; ++k) a[static_cast<size_t>(i) * K + k] = A[static_cast<size_t>(k) * lda + i];
    A = a.data();
    lda = std::max(K, 1);
  }
  builtinSgemmPackedB(M, N, K, alpha, A, lda, packed.data(), beta, C, ldc, ThreadPool::instance());
}

void runSystem(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) {
  SystemBlas::instance().sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Runs one case and compares against a double-precision reference. `samples` > 0 checks only that many random
// entries (large shapes, where the full O(MNK) reference would be slow); every entry of the padding is checked.
bool runCase(const Case& c, GemmFn fn, const char* impl, int samples = 0) {
  const int rowsA = c.ta ? c.K : c.M, colsA = c.ta ? c.M : c.K;
  const int rowsB = c.tb ? c.N : c.K, colsB = c.tb ? c.K : c.N;
  const int lda = std::max(colsA, 1) + c.padA;
  const int ldb = std::max(colsB, 1) + c.padB;
  const int ldc = std::max(c.N, 1) + c.padC;
  std::vector<float> A(static_cast<size_t>(std::max(rowsA, 1)) * lda), B(static_cast<size_t>(std::max(rowsB, 1)) * ldb);
  for (auto& v : A) v = randf();
  for (auto& v : B) v = randf();
  const float sentinel = 12345.f;
  std::vector<float> C(static_cast<size_t>(std::max(c.M, 1)) * ldc + 16);
  for (size_t i = 0; i < C.size(); ++i) C[i] = sentinel;
  for (int i = 0; i < c.M; ++i)
    for (int j = 0; j < c.N; ++j)
      C[static_cast<size_t>(i) * ldc + j] = c.nanC ? std::numeric_limits<float>::quiet_NaN() : randf();
  const std::vector<float> C0 = C;

  fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);

  auto a = [&](int i, int k) { return static_cast<double>(c.ta ? A[static_cast<size_t>(k) * lda + i] : A[static_cast<size_t>(i) * lda + k]); };
  auto b = [&](int k, int j) { return static_cast<double>(c.tb ? B[static_cast<size_t>(j) * ldb + k] : B[static_cast<size_t>(k) * ldb + j]); };
  const double tol = 2e-5 * std::sqrt(static_cast<double>(c.K) + 1.0) + 1e-6;
  double worst = 0.0;
  int bad = 0;
  auto checkEntry = [&](int i, int j) {
    double dot = 0.0, mag = 0.0;
    for (int k = 0; k < c.K; ++k) {
      double p = a(i, k) * b(k, j);
      dot += p;
      mag += std::fabs(p);
    }
    const double c0 = C0[static_cast<size_t>(i) * ldc + j];
    double ref = c.alpha * dot;
    double scale = std::fabs(c.alpha) * mag + 1.0;
    if (c.beta != 0.f) {
      ref += c.beta * c0;
      scale += std::fabs(c.beta * c0);
    }
    const double got = C[static_cast<size_t>(i) * ldc + j];
    const double err = std::fabs(got - ref) / scale;
    if (!(err <= tol)) {  // also catches NaN
      if (bad < 3)
        std::printf("  mismatch at (%d,%d): got %.7g want %.7g (rel err %.3g, tol %.3g)\n", i, j, got, ref, err, tol);
      ++bad;
    }
    if (err > worst || std::isnan(err)) worst = err;
  };
  if (samples > 0) {
    for (int s = 0; s < samples; ++s) checkEntry(randi(0, c.M - 1), randi(0, c.N - 1));
    // Always include the corners, where edge handling lives.
    checkEntry(0, 0);
    checkEntry(c.M - 1, c.N - 1);
    checkEntry(0, c.N - 1);
    checkEntry(c.M - 1, 0);
  } else {
    for (int i = 0; i < c.M; ++i)
      for (int j = 0; j < c.N; ++j) checkEntry(i, j);
  }
  // Nothing outside the M x N window of C may be written.
  int clobbered = 0;
  for (size_t idx = 0; idx < C.size(); ++idx) {
    const size_t i = idx / ldc, j = idx % ldc;
    const bool inside = static_cast<int>(i) < c.M && static_cast<int>(j) < c.N;
    if (!inside && C[idx] != sentinel) ++clobbered;
  }
  if (clobbered) std::printf("  %d entries outside C's window were written\n", clobbered);
  const bool ok = bad == 0 && clobbered == 0;
  check(ok, describe(c, impl));
  return ok;
}

void correctness(GemmFn fn, const char* impl) {
  const int before = gFailed;
  const float alphas[] = {1.f, -0.5f, 2.f};
  const float betas[] = {0.f, 1.f, 0.75f};
  // Every trans combination over a grid of awkward sizes.
  const int small[] = {1, 7, 17, 33};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int M : small)
        for (int N : small)
          for (int K : small) {
            Case c{ta != 0, tb != 0, M, N, K, randi(0, 3), randi(0, 3), randi(0, 3),
                   alphas[randi(0, 2)], betas[randi(0, 2)], false};
            c.nanC = c.beta == 0.f;
            runCase(c, fn, impl);
          }
  // Random shapes from a wider list, including sizes around the register tile and cache block edges.
  const int sizes[] = {1, 2, 3, 5, 6, 7, 8, 13, 14, 15, 16, 17, 28, 31, 32, 33, 47, 64, 65, 100, 129, 141, 257, 300};
  const int nsizes = sizeof(sizes) / sizeof(sizes[0]);
  for (int t = 0; t < 160; ++t) {
    Case c{randi(0, 1) != 0, randi(0, 1) != 0, sizes[randi(0, nsizes - 1)], sizes[randi(0, nsizes - 1)],
           sizes[randi(0, nsizes - 1)], randi(0, 1) ? 0 : randi(1, 9), randi(0, 1) ? 0 : randi(1, 9),
           randi(0, 1) ? 0 : randi(1, 9), alphas[randi(0, 2)], betas[randi(0, 2)], false};
    c.nanC = c.beta == 0.f && randi(0, 1);
    runCase(c, fn, impl);
  }
  // K == 0 means C = beta * C; beta == 0 must clear NaN.
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      runCase(Case{ta != 0, tb != 0, 5, 9, 0, 1, 2, 3, 1.f, 0.f, true}, fn, impl);
      runCase(Case{ta != 0, tb != 0, 5, 9, 0, 0, 0, 0, 1.f, 0.5f, false}, fn, impl);
      // alpha == 0 is the same as K == 0.
      runCase(Case{ta != 0, tb != 0, 6, 7, 8, 0, 0, 0, 0.f, 0.f, true}, fn, impl);
    }
  // M == 0 or N == 0: must not touch anything.
  runCase(Case{false, false, 0, 5, 3, 0, 0, 0, 1.f, 0.f, false}, fn, impl);
  runCase(Case{true, true, 4, 0, 3, 0, 0, 0, 1.f, 0.f, false}, fn, impl);
  // Shapes spanning several K / M / N cache blocks.
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      runCase(Case{ta != 0, tb != 0, 37, 45, 777, 3, 0, 1, 1.f, 0.5f, false}, fn, impl);
      runCase(Case{ta != 0, tb != 0, 301, 70, 40, 0, 5, 0, -1.f, 0.f, true}, fn, impl);
      runCase(Case{ta != 0, tb != 0, 5, 2100, 19, 0, 0, 7, 1.f, 1.f, false}, fn, impl);
      runCase(Case{ta != 0, tb != 0, 70, 2113, 300, 1, 1, 1, 0.5f, 0.f, true}, fn, impl, 3000);
    }
  // Thin op(A) (1-5 rows): the in-place B paths (wide kernels, dot products) and their column remainders.
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int M = 1; M <= 5; ++M)
        for (int N : {200, 300, 1041})
          for (int K : {1, 9, 16, 17, 65, 300}) {
            Case c{ta != 0, tb != 0, M, N, K, randi(0, 2), randi(0, 2), randi(0, 2), alphas[randi(0, 2)],
                   betas[randi(0, 2)], false};
            c.nanC = c.beta == 0.f;
            runCase(c, fn, impl);
          }
  // The shapes this project runs (sampled check for the big ones).
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{3, 20, 5},       {1, 1024, 256},    {32, 1024, 256},   {16, 2048, 512},
                          {64, 2048, 512},  {2048, 1024, 65},  {4096, 1024, 256}, {1024, 256, 2048}};
  for (const Shape& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const bool big = static_cast<double>(s.M) * s.N * s.K > 4e6;
        runCase(Case{ta != 0, tb != 0, s.M, s.N, s.K, 0, 0, 0, 1.f, ta ? 1.f : 0.f, !ta}, fn, impl, big ? 2000 : 0);
      }
  std::printf("%s: %s\n", impl, gFailed == before ? "all cases passed" : "FAILURES");
}

// builtinFewRowProducts: several thin products (B [N, K] read in place) split across the pool as one pass. Each
// product is checked in full against a double reference, and nothing around its C window may be written.
void fewRowProductTests() {
  const int before = gFailed;
  struct Spec {
    int M, N, K, padA, padB, padC;
    float beta;
  };
  const std::vector<std::vector<Spec>> groups = {
      {{1, 1024, 65, 0, 0, 0, 1.f}, {1, 1024, 256, 0, 0, 0, 0.f}},  // a stream step's input + recurrent product
      {{1, 1024, 256, 0, 0, 0, 1.f}, {1, 1024, 256, 0, 0, 0, 0.f}},
      {{2, 300, 17, 1, 3, 2, 1.f}, {2, 300, 33, 0, 1, 0, 0.f}},
      {{3, 7, 5, 0, 0, 1, 0.f}, {3, 13, 300, 2, 0, 0, 1.f}},
      {{4, 1, 1, 0, 0, 0, 0.75f}, {4, 9, 16, 0, 0, 0, 0.f}, {4, 1041, 40, 1, 1, 1, 1.f}},
      {{1, 768, 0, 0, 0, 0, 0.5f}, {1, 5, 3, 0, 0, 0, 0.f}},  // K == 0 scales C by beta
  };
  for (const auto& group : groups) {
    struct Buffers {
      std::vector<float> A, B, C, C0;
      int lda, ldb, ldc;
    };
    std::vector<Buffers> buf(group.size());
    std::vector<rnnkit::RowProduct> products;
    const float sentinel = 12345.f;
    for (size_t g = 0; g < group.size(); ++g) {
      const Spec& s = group[g];
      Buffers& b = buf[g];
      b.lda = std::max(s.K, 1) + s.padA;
      b.ldb = std::max(s.K, 1) + s.padB;
      b.ldc = s.N + s.padC;
      b.A.resize(static_cast<size_t>(s.M) * b.lda);
      b.B.resize(static_cast<size_t>(s.N) * b.ldb);
      b.C.assign(static_cast<size_t>(s.M) * b.ldc + 16, sentinel);
      for (auto& v : b.A) v = randf();
      for (auto& v : b.B) v = randf();
      for (int i = 0; i < s.M; ++i)
        for (int j = 0; j < s.N; ++j) b.C[static_cast<size_t>(i) * b.ldc + j] = randf();
      b.C0 = b.C;
      products.push_back({s.M, s.N, s.K, b.A.data(), b.lda, b.B.data(), b.ldb, s.beta, b.C.data(), b.ldc});
    }
    rnnkit::cpu::builtinFewRowProducts(products.data(), static_cast<int>(products.size()), ThreadPool::instance());
    for (size_t g = 0; g < group.size(); ++g) {
      const Spec& s = group[g];
      const Buffers& b = buf[g];
      int bad = 0, clobbered = 0;
      for (size_t idx = 0; idx < b.C.size(); ++idx) {
        const int i = static_cast<int>(idx / b.ldc), j = static_cast<int>(idx % b.ldc);
        if (i >= s.M || j >= s.N) {
          if (b.C[idx] != sentinel) ++clobbered;
          continue;
        }
        double ref = s.beta * static_cast<double>(b.C0[idx]), scale = 1.0 + std::fabs(ref);
        for (int k = 0; k < s.K; ++k) {
          const double p = static_cast<double>(b.A[static_cast<size_t>(i) * b.lda + k]) * b.B[static_cast<size_t>(j) * b.ldb + k];
          ref += p;
          scale += std::fabs(p);
        }
        if (!(std::fabs(b.C[idx] - ref) / scale <= 2e-5 * std::sqrt(s.K + 1.0) + 1e-6)) ++bad;
      }
      check(bad == 0 && clobbered == 0,
            "few-row products: " + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K) +
                " beta " + std::to_string(s.beta) + " (product " + std::to_string(g + 1) + " of " +
                std::to_string(group.size()) + ")");
    }
  }
  std::printf("few-row products: %s\n", gFailed == before ? "all cases passed" : "FAILURES");
}

void threadPoolTests() {
  ThreadPool& pool = ThreadPool::instance();
  // Every index visited exactly once, for many n / grain combinations.
  for (size_t n : {size_t(1), size_t(2), size_t(3), size_t(10), size_t(1000), size_t(100003)}) {
    for (size_t grain : {size_t(1), size_t(7), size_t(1000)}) {
      std::vector<std::atomic<int>> hits(n);
      for (auto& h : hits) h.store(0);
      pool.parallelFor(n, grain, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      bool ok = true;
      for (auto& h : hits) ok &= h.load() == 1;
      check(ok, "parallelFor covers n=" + std::to_string(n) + " grain=" + std::to_string(grain));
    }
  }
  pool.parallelFor(0, 1, [&](size_t, size_t) { check(false, "parallelFor(0) must not call fn"); });
  // Nested calls run inline and still cover everything.
  {
    std::atomic<long> sum{0};
    pool.parallelFor(64, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i)
        pool.parallelFor(100, 1, [&](size_t b2, size_t e2) {
          for (size_t j = b2; j < e2; ++j) sum.fetch_add(static_cast<long>(j));
        });
    });
    check(sum.load() == 64L * 4950L, "nested parallelFor");
  }
  // Several external threads at once, many small jobs each (exercises the wake/serialize paths).
  {
    std::atomic<long> total{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
      ts.emplace_back([&] {
        for (int r = 0; r < 2000; ++r)
          pool.parallelFor(16, 1, [&](size_t b, size_t e) { total.fetch_add(static_cast<long>(e - b)); });
      });
    for (auto& t : ts) t.join();
    check(total.load() == 3L * 2000L * 16L, "concurrent parallelFor from 3 threads");
  }
  // Exceptions from a chunk reach the caller and leave the pool usable.
  {
    bool caught = false;
    try {
      pool.parallelFor(pool.size() * 4, 1, [&](size_t b, size_t) {
        if (b == 0) throw std::runtime_error("boom");
      });
    } catch (const std::runtime_error&) {
      caught = true;
    }
    std::atomic<int> after{0};
    pool.parallelFor(100, 1, [&](size_t b, size_t e) { after.fetch_add(static_cast<int>(e - b)); });
    check(caught && after.load() == 100, "exception propagation");
  }
  // Concurrent GEMMs from two external threads produce correct results.
  {
    std::vector<std::thread> ts;
    std::atomic<int> okCount{0};
    for (int t = 0; t < 2; ++t)
      ts.emplace_back([&, t] {
        const int M = 64 + t, N = 200, K = 96;
        std::vector<float> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(K) * N), C(static_cast<size_t>(M) * N);
        for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7 + t) % 13) - 6.f;
        for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 5) % 11) - 5.f;
        bool ok = true;
        for (int r = 0; r < 20; ++r) {
          builtinSgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N, ThreadPool::instance());
          for (int i = 0; i < M && ok; i += 13)
            for (int j = 0; j < N; j += 17) {
              double ref = 0;
              for (int k = 0; k < K; ++k) ref += static_cast<double>(A[i * K + k]) * B[k * N + j];
              if (std::fabs(ref - C[i * N + j]) > 1e-3) ok = false;  // small integers: exact in float
            }
        }
        if (ok) okCount.fetch_add(1);
      });
    for (auto& t : ts) t.join();
    check(okCount.load() == 2, "concurrent builtinSgemm from 2 threads");
  }
}

// ------------------------------------------------------------------------------------------------------------------
// Timing (printed, not asserted).

// Wall-clock seconds, or CPU seconds of the calling thread. Single-threaded runs are timed with the latter so that
// other processes on a shared machine do not distort them.
double secondsNow(bool threadCpu) {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  if (threadCpu) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
#endif
  (void)threadCpu;
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Bench {
  const char* label;
  bool ta, tb;
  int M, N, K;
};

// GFLOP/s of one run of at least ~25 ms.
double timeOnce(GemmFn fn, const Bench& b, std::vector<float>& A, std::vector<float>& B, std::vector<float>& C,
                bool threadCpu) {
  const int lda = b.ta ? b.M : b.K, ldb = b.tb ? b.K : b.N;
  const double flops = 2.0 * b.M * b.N * b.K;
  fn(b.ta, b.tb, b.M, b.N, b.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), b.N);  // warm up
  for (int iters = 1;; iters *= 2) {
    const double t0 = secondsNow(threadCpu);
    for (int i = 0; i < iters; ++i)
      fn(b.ta, b.tb, b.M, b.N, b.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), b.N);
    const double dt = secondsNow(threadCpu) - t0;
    if (dt >= 0.025) return flops * iters / dt / 1e9;
  }
}

void timingTable() {
  const Bench benches[] = {
      {"step batch 32", false, true, 32, 1024, 256},     {"step 64x2048x512", false, true, 64, 2048, 512},
      {"step 16x2048x512", false, true, 16, 2048, 512},  {"proj 2048x1024x65", false, true, 2048, 1024, 65},
      {"proj 4096x1024x256", false, true, 4096, 1024, 256}, {"wgrad dG^T*X", true, false, 1024, 256, 2048},
      {"step batch 1", false, true, 1, 1024, 256},       {"step batch 1 (NN)", false, false, 1, 1024, 256},
      {"tiny 3x20x5", false, false, 3, 20, 5},           {"nn 32x1024x256", false, false, 32, 1024, 256},
      {"nn 4096x1024x256", false, false, 4096, 1024, 256},
  };
  const SystemBlas& sys = SystemBlas::instance();
  ThreadPool& pool = ThreadPool::instance();
  const int poolSize = pool.size();
  std::printf("\nGFLOP/s, best of 5 (builtin kernel: %s; system BLAS: %s). 1-thread columns use thread CPU time,\n"
              "2-thread columns wall time (only meaningful on an otherwise idle machine).\n",
              builtinKernelName(), sys.available() ? sys.name().c_str() : "none");
  std::printf("%-20s %-5s %14s | %8s %8s | %8s %8s | %6s %6s\n", "shape", "trans", "MxNxK", "builtin1", "builtin2",
              "blas1", "blas2", "ratio1", "ratio2");
  for (const Bench& b : benches) {
    std::vector<float> A(static_cast<size_t>(b.M) * b.K), B(static_cast<size_t>(b.K) * b.N),
        C(static_cast<size_t>(b.M) * b.N);
    for (auto& v : A) v = randf();
    for (auto& v : B) v = randf();
    double best[2][2] = {{0, 0}, {0, 0}};  // [threads-1][builtin, blas]
    for (int t = 1; t <= 2; ++t) {
      pool.resize(t);
      if (sys.available()) sys.setThreads(t);
      // Alternate the two implementations so that both see the same machine conditions.
      for (int rep = 0; rep < 5; ++rep) {
        best[t - 1][0] = std::max(best[t - 1][0], timeOnce(runBuiltin, b, A, B, C, t == 1));
        if (sys.available()) best[t - 1][1] = std::max(best[t - 1][1], timeOnce(runSystem, b, A, B, C, t == 1));
      }
    }
    char dims[64];
    std::snprintf(dims, sizeof dims, "%dx%dx%d", b.M, b.N, b.K);
    std::printf("%-20s %c%c    %14s | %8.1f %8.1f |", b.label, b.ta ? 'T' : 'N', b.tb ? 'T' : 'N', dims, best[0][0],
                best[1][0]);
    if (sys.available()) {
      std::printf(" %8.1f %8.1f | %5.0f%% %5.0f%%\n", best[0][1], best[1][1], 100.0 * best[0][0] / best[0][1],
                  100.0 * best[1][0] / best[1][1]);
    } else {
      std::printf(" %8s %8s |\n", "-", "-");
    }
  }
  pool.resize(poolSize);
}

}  // namespace

// builtinPackBRows (op(B)'s columns from B's rows in a given order) and builtinSgemmPackedBColumns (a panel-aligned
// column range on the calling thread): each range of a product written once, everything outside left alone, every
// value equal to the sum over k of A and the permuted B in double precision.
void permutedColumnTests() {
  const int before = gFailed;
  struct Spec {
    int M, N, K;
    float beta;
  };
  const int nr = builtinPanelWidth();
  for (const Spec& s : std::vector<Spec>{{32, 1024, 256, 0.f}, {7, 99, 37, 1.f}, {1, 70, 5, 0.f}, {15, 200, 300, 1.f},
                                         {64, 96, 512, 0.5f}}) {
    const int lda = s.K + 3, ldc = s.N + 5;
    std::vector<float> A(static_cast<size_t>(s.M) * lda), B(static_cast<size_t>(s.N) * s.K);
    for (auto& v : A) v = randf();
    for (auto& v : B) v = randf();
    std::vector<int> rowOf(s.N);
    for (int n = 0; n < s.N; ++n) rowOf[n] = static_cast<int>((static_cast<long>(n) * 37 + 11) % s.N);
    // A permutation only where gcd(37, N) == 1; otherwise some rows repeat, which the packing allows too.
    const size_t floats = builtinPackedBFloats(true, s.N, s.K, 64);
    std::vector<float> packed(floats ? floats : 1);
    if (!floats) {
      check(true, "packed layout not used for this shape");
      continue;
    }
    builtinPackBRows(s.N, s.K, B.data(), s.K, rowOf.data(), packed.data());
    const float sentinel = 4321.f;
    std::vector<float> C(static_cast<size_t>(s.M) * ldc, sentinel), C0;
    for (int i = 0; i < s.M; ++i)
      for (int j = 0; j < s.N; ++j) C[static_cast<size_t>(i) * ldc + j] = randf();
    C0 = C;
    // Uneven panel-aligned ranges, run in reverse order.
    std::vector<int> cuts = {0};
    for (int at = nr; at < s.N; at += nr * (1 + static_cast<int>(cuts.size()) % 3)) cuts.push_back(at);
    cuts.push_back(s.N);
    for (size_t r = cuts.size() - 1; r > 0; --r)
      builtinSgemmPackedBColumns(s.M, s.N, s.K, 1.f, A.data(), lda, packed.data(), s.beta, C.data(), ldc, cuts[r - 1],
                                 cuts[r]);
    int bad = 0, clobbered = 0;
    for (int i = 0; i < s.M; ++i)
      for (int j = 0; j < ldc; ++j) {
        const size_t idx = static_cast<size_t>(i) * ldc + j;
        if (j >= s.N) {
          if (C[idx] != sentinel) ++clobbered;
          continue;
        }
        double ref = s.beta * static_cast<double>(C0[idx]), scale = 1.0 + std::fabs(ref);
        for (int k = 0; k < s.K; ++k) {
          const double p = static_cast<double>(A[static_cast<size_t>(i) * lda + k]) * B[static_cast<size_t>(rowOf[j]) * s.K + k];
          ref += p;
          scale += std::fabs(p);
        }
        if (!(std::fabs(C[idx] - ref) / scale <= 2e-5 * std::sqrt(s.K + 1.0) + 1e-6)) ++bad;
      }
    check(bad == 0 && clobbered == 0, "permuted packed columns: " + std::to_string(s.M) + "x" + std::to_string(s.N) +
                                          "x" + std::to_string(s.K) + " in " + std::to_string(cuts.size() - 1) +
                                          " ranges");
  }
  std::printf("permuted packed columns: %s\n", gFailed == before ? "all cases passed" : "FAILURES");
}

int main(int argc, char** argv) {
  bool bench = true;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--no-bench") == 0) bench = false;
  const SystemBlas& sys = SystemBlas::instance();
  std::printf("builtin kernel: %s, pool threads: %d, system BLAS: %s (%s)\n", builtinKernelName(),
              ThreadPool::instance().size(), sys.available() ? sys.name().c_str() : "none", sys.detail().c_str());

  // Library discovery: an explicit "none" or an unloadable path leaves it unavailable with a reason, never a crash.
  const char* blasEnv = std::getenv("RNNKIT_BLAS");
  if (blasEnv && *blasEnv) {
    const bool wantsNone = std::strcmp(blasEnv, "none") == 0 || std::strcmp(blasEnv, "builtin") == 0;
    const bool bogus = std::strstr(blasEnv, "nonexistent") != nullptr;
    if (wantsNone || bogus)
      check(!sys.available() && sys.name().empty() && !sys.detail().empty(), "RNNKIT_BLAS=" + std::string(blasEnv));
  }
  if (sys.available()) check(!sys.name().empty() && !sys.detail().empty(), "system BLAS reports name and file");
  // The default rule: where the built-in kernel is SIMD, no system BLAS is even looked for, and detail() says so.
  if ((!blasEnv || !*blasEnv) && builtinGemmIsDefault())
    check(!sys.available() && sys.detail().find("not looked for") != std::string::npos,
          "default: the built-in GEMM, no system BLAS loaded (" + sys.detail() + ")");

  threadPoolTests();
  correctness(runBuiltin, "builtin");
  correctness(runPacked, "builtin, B packed once");
  fewRowProductTests();
  permutedColumnTests();
  if (sys.available()) correctness(runSystem, sys.name().c_str());
  if (bench) timingTable();

  std::printf("%d passed, %d failed\n", gPassed, gFailed);
  return gFailed == 0 ? 0 : 1;
}
