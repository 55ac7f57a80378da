// The queue of a handle's Promise calls: one call runs at a time (on the thread pool), the others wait in call order.
// Shared by every handle whose Promise calls use one native object (a Network, a Seq2Seq), so concurrent calls on one
// model run one after another and settle in the order they were made instead of being refused as busy.
#pragma once

#include <deque>
#include <string>

#include "../core/error.h"

namespace rnnkit::addon {

// A Promise call waiting for its turn: started (queued on the thread pool), or cancelled (rejected and deleted).
struct QueuedCall {
  virtual ~QueuedCall() = default;
  // Queues the work, or cancels the call when its job can no longer run (a disposed stream); false then.
  virtual bool start() = 0;
  virtual void cancel(ErrorCode code, const std::string& message) = 0;
};

class CallQueue {
 public:
  // A call runs: a worker on the thread pool, or a synchronous call (markRunning).
  bool running() const { return running_; }
  // Nothing runs and nothing waits: a call made now would run at once, keeping the call order.
  bool idle() const { return !running_ && waiting_.empty(); }
  void markRunning(bool running) { running_ = running; }

  // Start `call` now if nothing runs, else queue it.
  void submit(QueuedCall* call) {
    if (running_) {
      waiting_.push_back(call);
      return;
    }
    if (call->start()) running_ = true;
  }

  // The running call settled: start the next waiting call that can still run.
  void startNext() {
    running_ = false;
    while (!waiting_.empty()) {
      QueuedCall* next = waiting_.front();
      waiting_.pop_front();
      if (next->start()) {
        running_ = true;
        return;
      }
    }
  }

  // The running call settled on a disposed handle: every waiting call is refused, in call order.
  void cancelWaiting(ErrorCode code, const std::string& message) {
    running_ = false;
    std::deque<QueuedCall*> waiting;
    waiting.swap(waiting_);
    for (QueuedCall* call : waiting) call->cancel(code, message);
  }

 private:
  bool running_ = false;
  std::deque<QueuedCall*> waiting_;  // in call order
};

}  // namespace rnnkit::addon
