// A fixed pool of worker threads shared by the CPU backend's GEMM and element-wise kernels.
// Threads are created once (sized to the machine, or RNNKIT_THREADS, or setThreads) and never per call.
#pragma once

#include <cstddef>
#include <functional>

namespace rnnkit::cpu {

class ThreadPool {
 public:
  // The process-wide pool. Its size is read from RNNKIT_THREADS on first use, else the number of hardware threads.
  static ThreadPool& instance();

  // Total number of threads that take part in a parallelFor (the calling thread included).
  int size() const;

  // Resize the pool (n >= 1). Safe to call when no parallelFor is running.
  void resize(int n);

  // Split [0, n) into at most size() contiguous chunks of at least `grain` items and run fn(begin, end) on each,
  // the calling thread taking one chunk. Returns when every chunk has finished. A parallelFor issued from inside
  // a worker (nested) runs serially on that thread. Calls from several threads at once are serialized.
  void parallelFor(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& fn);
  // The same for a lambda or other callable, held by reference: a std::function made from a lambda that captures
  // more than two pointers allocates, and a batch-1 step makes a few such calls each time.
  template <typename Fn>
  void parallelFor(std::size_t n, std::size_t grain, const Fn& fn) {
    parallelFor(n, grain, std::function<void(std::size_t, std::size_t)>(std::cref(fn)));
  }

  ~ThreadPool();

 private:
  ThreadPool();
  struct Impl;
  Impl* impl_;
};

}  // namespace rnnkit::cpu
