// The work a NetworkHandle runs over a whole sequence, one struct per operation. A job parses its arguments on
// the JavaScript thread, runs on any thread without touching JavaScript (so the same job serves the synchronous
// method and the Promise one), then turns its result into JavaScript values back on the JavaScript thread.
#pragma once

#include <napi.h>

#include "../core/network.h"

namespace rnnkit::addon {

// What every job has: no reason to be cancelled once queued. A job that can be (a step of a disposed stream) hides
// cancelReason with its own.
struct JobBase {
  const char* cancelReason() const { return nullptr; }
};

struct ForwardJob : JobBase {
  ForwardJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.forward(input, train); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  bool train = false;
  SequenceOutput result;
};

struct BackwardJob : JobBase {
  BackwardJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.backward(grad); }
  Napi::Value toJs(Napi::Env env) const;

  OutputGradient grad;
  InputGradient result;
};

struct LossJob : JobBase {
  LossJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.lossBackward(target); }
  Napi::Value toJs(Napi::Env env) const;

  LossTarget target;
  LossResult result;
};

struct EvaluateJob : JobBase {
  EvaluateJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.evaluate(input, target); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  LossTarget target;
  LossStats result;
};

struct TrainStepJob : JobBase {
  TrainStepJob(const Napi::CallbackInfo& info, const Network& net);
  void run(Network& net) { result = net.trainStep(input, target, clipNorm, carryState, nonFinite); }
  Napi::Value toJs(Napi::Env env) const;

  SequenceInput input;
  LossTarget target;
  double clipNorm = 0;
  bool carryState = false;
  NonFinitePolicy nonFinite = NonFinitePolicy::Error;
  TrainStepResult result;
};

// Parsers shared by the jobs and the handle.
// A tensor argument: { data: Float32Array, shape: number[] }, or a bare Float32Array where the shape is implied
// (shape == nullptr). With `shape`, the shape is required and must hold exactly the data's values.
std::vector<float> readFloatTensorData(const Napi::Value& value, const std::string& what,
                                       std::vector<long long>* shape = nullptr);
// The same for integers: { data: Int32Array | number[], shape }, or a bare array where the shape is implied.
std::vector<int32_t> readIntTensorData(const Napi::Value& value, const std::string& what,
                                       std::vector<long long>* shape = nullptr);
NetworkSpec parseNetworkSpec(const Napi::Value& value);
OptimizerConfig parseOptimizerConfig(const Napi::Value& value);
SequenceInput parseSequenceInput(const Napi::Value& value, int vocabSize);
ModelSpec parseModelSpec(const Napi::Value& value);
// One layer of a pipeline spec ({ type, name, ... }); parameters are named `name.` + PyTorch's names, or defaultPrefix.
StageSpec parseStageSpec(const Napi::Object& layer, const std::string& at, const std::string& defaultPrefix);
LossTarget parseLossTarget(const Napi::Value& value);
// The options of a GraphModel or Seq2Seq call (undefined: the defaults): forward's { train } (false), trainStep's
// { clipNorm } (0: no clipping).
bool parseForwardOptions(const Napi::Value& options);
double parseTrainStepOptions(const Napi::Value& options);

}  // namespace rnnkit::addon
