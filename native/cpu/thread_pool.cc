#include "thread_pool.h"

#include "thread_priority.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rnnkit::cpu {

namespace {

// Tells the core we are in a spin loop: lowers power and frees pipeline resources for the SMT sibling.
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// True on pool workers for their whole life and on a calling thread while it runs its own chunks, so that a
// parallelFor issued from inside a chunk runs inline instead of deadlocking on the (non-recursive) call mutex.
thread_local bool tlInsideParallel = false;

int defaultThreadCount() {
  if (const char* env = std::getenv("RNNKIT_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) return static_cast<int>(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc >= 1 ? static_cast<int>(hc) : 1;
}

// The claim word packs (generation, chunk count, next chunk index) into one atomic so that a worker which wakes
// late can never take a chunk of a newer job using the bounds of an older one: a successful CAS proves that the
// chunk belongs to the job currently published.
constexpr int kGenShift = 32;
constexpr int kCountShift = 16;
constexpr std::uint64_t kLow16 = 0xFFFFu;
constexpr int kMaxChunks = 0xFFFF;

inline std::uint32_t genOf(std::uint64_t w) { return static_cast<std::uint32_t>(w >> kGenShift); }
inline std::uint32_t countOf(std::uint64_t w) { return static_cast<std::uint32_t>((w >> kCountShift) & kLow16); }
inline std::uint32_t indexOf(std::uint64_t w) { return static_cast<std::uint32_t>(w & kLow16); }

}  // namespace

struct ThreadPool::Impl {
  int size = 1;
  std::vector<std::thread> workers;

  // Serializes parallelFor calls coming from different external threads (and resize).
  std::mutex callMutex;

  std::atomic<std::uint64_t> claim{0};
  std::atomic<int> done{0};
  std::atomic<bool> stop{false};

  // Job description. Written only by the caller before the claim word is published (release) and read by a
  // worker only after a successful claim (acquire), so plain fields are race-free.
  const std::function<void(std::size_t, std::size_t)>* fn = nullptr;
  std::size_t n = 0;
  std::size_t chunks = 0;

  // First exception thrown by a chunk on a worker; rethrown on the calling thread.
  std::mutex errorMutex;
  std::exception_ptr error;

  // Workers spin for a short while after each job (the time loop issues jobs back to back), then sleep here.
  std::mutex sleepMutex;
  std::condition_variable wake;
  std::atomic<int> sleepers{0};

  void start(int n);
  void shutdown();
  void workerLoop();
  // Claims and runs chunks of the job tagged `gen` until none is left. Returns after the last claim attempt.
  void runChunks(std::uint32_t gen);
  void runOne(std::size_t idx);
};

void ThreadPool::Impl::runOne(std::size_t idx) {
  std::size_t b = n * idx / chunks;
  std::size_t e = n * (idx + 1) / chunks;
  (*fn)(b, e);
}

void ThreadPool::Impl::runChunks(std::uint32_t gen) {
  std::uint64_t w = claim.load(std::memory_order_acquire);
  for (;;) {
    if (genOf(w) != gen || indexOf(w) >= countOf(w)) return;
    if (!claim.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    try {
      runOne(indexOf(w));
    } catch (...) {
      std::lock_guard<std::mutex> lk(errorMutex);
      if (!error) error = std::current_exception();
    }
    done.fetch_add(1, std::memory_order_release);
    w = claim.load(std::memory_order_acquire);
  }
}

void ThreadPool::Impl::workerLoop() {
  tlInsideParallel = true;
  lowerThisThreadPriority();
  std::uint32_t seen = genOf(claim.load(std::memory_order_acquire));
  for (;;) {
    // Spin on the claim word for ~50us: a job issued right after the previous one (the common case inside a
    // time loop) is then picked up without a futex round trip. After that, block so idle pools cost nothing.
    std::uint64_t w = claim.load(std::memory_order_acquire);
    if (genOf(w) == seen && !stop.load(std::memory_order_relaxed)) {
      auto spinStart = std::chrono::steady_clock::now();
      for (unsigned i = 1;; ++i) {
        cpuRelax();
        w = claim.load(std::memory_order_acquire);
        if (genOf(w) != seen || stop.load(std::memory_order_relaxed)) break;
        if ((i & 63) == 0 && std::chrono::steady_clock::now() - spinStart > std::chrono::microseconds(50)) break;
      }
    }
    if (genOf(w) == seen && !stop.load(std::memory_order_relaxed)) {
      std::unique_lock<std::mutex> lk(sleepMutex);
      // seq_cst increment paired with the seq_cst publish/read of `sleepers` in parallelFor: either the caller
      // sees us as a sleeper and notifies, or we see its new generation here and do not wait.
      sleepers.fetch_add(1, std::memory_order_seq_cst);
      wake.wait(lk, [&] {
        return genOf(claim.load(std::memory_order_seq_cst)) != seen || stop.load(std::memory_order_seq_cst);
      });
      sleepers.fetch_sub(1, std::memory_order_relaxed);
      w = claim.load(std::memory_order_acquire);
    }
    if (stop.load(std::memory_order_acquire)) return;
    seen = genOf(w);
    runChunks(seen);
  }
}

void ThreadPool::Impl::start(int count) {
  size = count < 1 ? 1 : count;
  stop.store(false);
  workers.reserve(static_cast<std::size_t>(size - 1));
  for (int i = 1; i < size; ++i) workers.emplace_back([this] { workerLoop(); });
}

void ThreadPool::Impl::shutdown() {
  {
    std::lock_guard<std::mutex> lk(sleepMutex);
    stop.store(true, std::memory_order_seq_cst);
  }
  wake.notify_all();
  for (auto& t : workers) t.join();
  workers.clear();
}

ThreadPool::ThreadPool() : impl_(new Impl) { impl_->start(defaultThreadCount()); }

ThreadPool::~ThreadPool() {
  impl_->shutdown();
  delete impl_;
}

ThreadPool& ThreadPool::instance() {
  // Deliberately leaked: joining workers from a static destructor can race with other exit-time destructors
  // (or with threads the OS already tore down), so the process-wide pool simply lives until the process dies.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

int ThreadPool::size() const { return impl_->size; }

void ThreadPool::resize(int n) {
  if (n < 1) n = 1;
  std::lock_guard<std::mutex> lk(impl_->callMutex);
  if (n == impl_->size) return;
  impl_->shutdown();
  impl_->start(n);
}

void ThreadPool::parallelFor(std::size_t n, std::size_t grain,
                             const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  if (grain < 1) grain = 1;
  Impl& s = *impl_;
  std::size_t chunks = n / grain;
  if (chunks > static_cast<std::size_t>(s.size)) chunks = static_cast<std::size_t>(s.size);
  if (chunks > static_cast<std::size_t>(kMaxChunks)) chunks = kMaxChunks;
  // Fast path: no synchronization at all for small work, single-thread pools and nested calls.
  if (chunks <= 1 || tlInsideParallel) {
    fn(0, n);
    return;
  }

  std::lock_guard<std::mutex> callLock(s.callMutex);
  s.fn = &fn;
  s.n = n;
  s.chunks = chunks;
  s.done.store(0, std::memory_order_relaxed);
  std::uint32_t gen = genOf(s.claim.load(std::memory_order_relaxed)) + 1;
  std::uint64_t word = (static_cast<std::uint64_t>(gen) << kGenShift) |
                       (static_cast<std::uint64_t>(chunks) << kCountShift);
  s.claim.store(word, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) > 0) {
    // Taking the mutex orders the notify after a worker's predicate check, so the wake-up cannot be lost.
    { std::lock_guard<std::mutex> lk(s.sleepMutex); }
    s.wake.notify_all();
  }

  tlInsideParallel = true;
  std::exception_ptr callerError;
  // The caller claims chunks too, so a job still completes promptly if workers are slow to wake.
  std::uint64_t w = s.claim.load(std::memory_order_acquire);
  for (;;) {
    if (genOf(w) != gen || indexOf(w) >= countOf(w)) break;
    if (!s.claim.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    try {
      s.runOne(indexOf(w));
    } catch (...) {
      if (!callerError) callerError = std::current_exception();
    }
    s.done.fetch_add(1, std::memory_order_release);
    w = s.claim.load(std::memory_order_acquire);
  }
  tlInsideParallel = false;

  const int need = static_cast<int>(chunks);
  for (unsigned i = 1; s.done.load(std::memory_order_acquire) < need; ++i) {
    if (i < 4096) {
      cpuRelax();
    } else {
      std::this_thread::yield();
    }
  }

  if (callerError) std::rethrow_exception(callerError);
  std::exception_ptr workerError;
  {
    std::lock_guard<std::mutex> lk(s.errorMutex);
    std::swap(workerError, s.error);
  }
  if (workerError) std::rethrow_exception(workerError);
}

}  // namespace rnnkit::cpu
