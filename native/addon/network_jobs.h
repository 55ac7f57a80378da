// The work a NetworkHandle runs over a whole sequence, one struct per operation. A job parses its arguments on
// the JavaScript thread, runs on any thread without touching JavaScript (so the same job serves the synchronous
// method and the Promise one), then turns its result into JavaScript values back on the JavaScript thread.
#pragma once

#include <napi.h>

#include "../core/network.h"

namespace rnnkit::addon {

struct ForwardJob {
  ForwardJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.forward(input, train); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  bool train = false;
  SequenceOutput result;
};

struct BackwardJob {
  BackwardJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.backward(grad); }
  Napi::Value toJs(Napi::Env env) const;

  OutputGradient grad;
  InputGradient result;
};

struct LossJob {
  LossJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.lossBackward(target); }
  Napi::Value toJs(Napi::Env env) const;

  LossTarget target;
  LossResult result;
};

struct EvaluateJob {
  EvaluateJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.evaluate(input, target); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  LossTarget target;
  LossStats result;
};

struct TrainStepJob {
  TrainStepJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.trainStep(input, target, clipNorm, carryState); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  LossTarget target;
  double clipNorm = 0;
  bool carryState = false;
  TrainStepResult result;
};

// Parsers shared by the jobs and the handle.
NetworkSpec parseNetworkSpec(const Napi::Value& value);
OptimizerConfig parseOptimizerConfig(const Napi::Value& value);
SequenceInput parseSequenceInput(const Napi::Value& value, int vocabSize);
ModelSpec parseModelSpec(const Napi::Value& value);
LossTarget parseLossTarget(const Napi::Value& value);

}  // namespace rnnkit::addon
