// NetworkHandle::run, kept apart because it needs the worker template (which needs NetworkHandle).
#pragma once

#include "js_errors.h"
#include "network_handle.h"
#include "network_worker.h"

namespace rnnkit::addon {

template <typename Job, typename MakeJob>
Napi::Value NetworkHandle::run(Napi::Env env, bool async, Napi::Object keepAlive, MakeJob makeJob) {
  if (!async) {
    checkUsable();
    Job job = makeJob();
    job.run(*network_);
    reportMemory();
    return job.toJs(env);
  }
  try {
    checkUsable();
    auto* worker = new NetworkWorker<Job>(env, this, keepAlive, makeJob());
    Napi::Promise promise = worker->promise();
    worker->Queue();  // the worker deletes itself once settled
    return promise;
  } catch (const Error& e) {
    // Argument errors of a Promise-returning method are reported through the Promise.
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(makeError(env, e.code(), e.what()).Value());
    return d.Promise();
  }
}

}  // namespace rnnkit::addon
