#include "thread_priority.h"

#include <cerrno>
#include <cstdlib>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace rnnkit::cpu {

int computeNice() {
  static const int nice = [] {
    if (const char* env = std::getenv("RNNKIT_COMPUTE_NICE")) {
      char* end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && v >= 0 && v <= 19) return (int)v;
    }
    return 2;
  }();
  return nice;
}

#if defined(__linux__)
namespace {
// On Linux, PRIO_PROCESS with a thread id addresses that one thread.
int tid() { return (int)syscall(SYS_gettid); }
}  // namespace

LowerThreadPriority::LowerThreadPriority() {
  if (computeNice() == 0) return;
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid());
  if (errno != 0) return;
  if (setpriority(PRIO_PROCESS, tid(), current + computeNice()) == 0) {
    previous_ = current;
    changed_ = true;
  }
}

LowerThreadPriority::~LowerThreadPriority() {
  // Raising a priority back may need privileges; when it fails the libuv thread simply stays slightly lower.
  if (changed_) setpriority(PRIO_PROCESS, tid(), previous_);
}

void lowerThisThreadPriority() {
  if (computeNice() == 0) return;
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid());
  if (errno == 0) setpriority(PRIO_PROCESS, tid(), current + computeNice());
}
#else
LowerThreadPriority::LowerThreadPriority() {}
LowerThreadPriority::~LowerThreadPriority() {}
void lowerThisThreadPriority() {}
#endif

}  // namespace rnnkit::cpu
