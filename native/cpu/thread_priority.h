// Compute threads run a little below normal priority, so that on a busy machine the JavaScript thread (the event
// loop) is scheduled first: a model training in the background must not make timers or requests late. On an idle
// machine priority changes nothing. Linux only (per-thread nice values); elsewhere these do nothing.
#pragma once

namespace rnnkit::cpu {

// How much lower (in nice steps) compute threads run; RNNKIT_COMPUTE_NICE overrides it (0 disables).
int computeNice();

// Lowers the calling thread's priority by computeNice() for the lifetime of the object (a libuv worker running a
// whole-sequence call), then restores it.
class LowerThreadPriority {
 public:
  LowerThreadPriority();
  ~LowerThreadPriority();
  LowerThreadPriority(const LowerThreadPriority&) = delete;
  LowerThreadPriority& operator=(const LowerThreadPriority&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// Lowers the calling thread's priority for good (the pool's own workers).
void lowerThisThreadPriority();

}  // namespace rnnkit::cpu
