// NetworkHandle::run, kept apart because it needs the handle complete (the worker calls it).
#pragma once

#include <type_traits>
#include <utility>

#include "js_errors.h"
#include "network_handle.h"
#include "model_worker.h"

namespace rnnkit::addon {

class NetworkHandle::ArgumentRead {
 public:
  explicit ArgumentRead(NetworkHandle& h) : h_(h) { h_.reading_ = true; }
  ~ArgumentRead() {
    h_.reading_ = false;
    if (h_.disposed_ && !h_.calls_.running()) h_.releaseNative();
  }
  // After the arguments are read: a getter may have disposed the handle.
  void done() { h_.checkNotDisposedWhileReading(); }

 private:
  NetworkHandle& h_;
};

// A Promise call whose work is this small (multiply-adds: tens of microseconds) runs on the calling thread when
// nothing runs or waits before it, and returns a settled Promise: the two thread hops of the pool (to a libuv
// worker and back to the event loop) would cost more than the work. A batch-1 step of a 2x256 LSTM is 0.85 M.
constexpr double kInlineMultiplyAdds = 2.0 * 1024 * 1024;

// Jobs that may run inline say how much work they are (Job::multiplyAdds(network)); the others never do.
template <typename Job, typename = void>
struct EstimatesWork : std::false_type {};
template <typename Job>
struct EstimatesWork<Job, std::void_t<decltype(std::declval<const Job&>().multiplyAdds(std::declval<const Network&>()))>>
    : std::true_type {};

template <typename Job, typename MakeJob>
Napi::Value NetworkHandle::run(Napi::Env env, bool async, Napi::Object keepAlive, MakeJob makeJob) {
  if (!async) {
    checkUsable();
    SyncCall call(*this);
    Job job = [&] {
      ArgumentRead reading(*this);
      Job j = makeJob();
      reading.done();
      return j;
    }();
    job.run(*model_);
    return job.toJs(env);
  }
  // Argument errors, and exceptions of the caller's own code run while the arguments were read (a getter, a Proxy
  // trap), are reported through the Promise.
  return rejectOnThrow(env, [&]() -> Napi::Value {
    checkOpen();
    Job job = [&] {
      ArgumentRead reading(*this);
      Job j = makeJob();
      reading.done();
      return j;
    }();
    if constexpr (EstimatesWork<Job>::value) {
      // Nothing before it in the queue: running it now keeps the call order.
      if (calls_.idle() && job.multiplyAdds(*model_) <= kInlineMultiplyAdds) {
        Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
        {
          SyncCall call(*this);
          job.run(*model_);
        }
        d.Resolve(job.toJs(env));
        return d.Promise();
      }
    }
    auto* worker = new ModelWorker<NetworkHandle, Job>(env, this, keepAlive, std::move(job));
    Napi::Promise promise = worker->promise();
    calls_.submit(worker);  // the worker deletes itself once settled
    return promise;
  });
}

}  // namespace rnnkit::addon
