// NetworkHandle::run, kept apart because it needs the worker template (which needs NetworkHandle).
#pragma once

#include "js_errors.h"
#include "network_handle.h"
#include "network_worker.h"

namespace rnnkit::addon {

class NetworkHandle::ArgumentRead {
 public:
  explicit ArgumentRead(NetworkHandle& h) : h_(h) { h_.reading_ = true; }
  ~ArgumentRead() {
    h_.reading_ = false;
    if (h_.disposed_ && !h_.running_) h_.releaseNative();
  }
  // After the arguments are read: a getter may have disposed the handle.
  void done() {
    if (h_.disposed_) fail(ErrorCode::Disposed, "this network has been disposed (while the call read its arguments)");
  }

 private:
  NetworkHandle& h_;
};

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
    job.run(*network_);
    return job.toJs(env);
  }
  try {
    checkOpen();
    NetworkWorker<Job>* worker;
    {
      ArgumentRead reading(*this);
      Job job = makeJob();
      reading.done();
      worker = new NetworkWorker<Job>(env, this, keepAlive, std::move(job));
    }
    Napi::Promise promise = worker->promise();
    submit(worker);  // the worker deletes itself once settled
    return promise;
  } catch (const Error& e) {
    // Argument errors of a Promise-returning method are reported through the Promise.
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(makeError(env, e.code(), e.what()).Value());
    return d.Promise();
  } catch (const Napi::Error& e) {
    // So is an exception of the caller's own code that ran while the arguments were read (a getter, a Proxy trap).
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
}

}  // namespace rnnkit::addon
