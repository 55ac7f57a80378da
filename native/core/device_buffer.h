// An owned block of backend memory that only grows: buffers sized for one batch shape are reused by later calls of
// the same or smaller shape, so the time loop never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "backend.h"

namespace rnnkit {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(Backend* backend = nullptr) : backend_(backend) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : backend_(o.backend_), ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      backend_ = o.backend_;
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  void setBackend(Backend* backend) { backend_ = backend; }

  // Make room for at least `bytes`; the contents are not kept when it grows.
  void reserve(std::size_t bytes) {
    if (bytes <= bytes_ && ptr_) return;
    release();
    ptr_ = backend_->alloc(bytes);
    bytes_ = bytes;
  }
  float* reserveFloats(std::size_t n) {
    reserve(n * sizeof(float));
    return floats();
  }
  int32_t* reserveInts(std::size_t n) {
    reserve(n * sizeof(int32_t));
    return ints();
  }

  void release() {
    if (ptr_) backend_->free(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }

  float* floats() const { return static_cast<float*>(ptr_); }
  int32_t* ints() const { return static_cast<int32_t*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  Backend* backend_;
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// A weight matrix that a time loop multiplies by at every step (op(W) is N x K, row stride ldb), set up for `steps`
// products of `rows` rows: packed into `panels` in the backend's step layout where it has one, else read in place.
// cellGates > 0: W is a cell's W_hh for Backend::recurrentStep (StepWeights::cellGates).
inline StepWeights prepareStepWeights(Backend& be, DeviceBuffer& panels, const float* W, bool transB, int N, int K,
                                      int ldb, int rows, int steps, int cellGates = 0) {
  StepWeights sw;
  sw.cellGates = cellGates;
  sw.B = W;
  sw.ldb = ldb;
  sw.transB = transB;
  sw.N = N;
  sw.K = K;
  if (std::size_t bytes = be.stepWeightsBytes(sw, rows, steps)) {
    panels.reserve(bytes);
    sw.panels = panels.floats();
    be.packStepWeights(sw);
  }
  return sw;
}

}  // namespace rnnkit
