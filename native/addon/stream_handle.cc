#include "stream_handle.h"

#include <cstring>

#include "../core/error.h"
#include "js_convert.h"
#include "js_errors.h"
#include "network_jobs.h"
#include "property_keys.h"

namespace rnnkit::addon {

namespace {

const napi_type_tag kStreamTag = {0x3f9e1d7c5b2a4e80ULL, 0x9c7e5a3b1d0f2468ULL};

template <Napi::Value (StreamHandle::*Method)(const Napi::CallbackInfo&)>
Napi::Value dispatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] { return (StreamHandle::fromThis(info)->*Method)(info); });
}

// The floats of one step's output per batch row, and whether the output keeps a time axis: the last stage's
// features (a recurrent stage that returns only its last step ends the time axis).
struct OutputForm {
  long long features = 0;
  bool sequence = true;
};

OutputForm outputForm(const ModelSpec& spec) {
  OutputForm f{spec.inputSize, true};
  for (const StageSpec& st : spec.stages) {
    switch (st.kind) {
      case StageKind::Embedding: f.features = st.embeddingDim; break;
      case StageKind::Recurrent:
        f.features = st.recurrentOutputSize();
        if (!st.returnSequences) f.sequence = false;
        break;
      case StageKind::Dense: f.features = st.units; break;
      case StageKind::Dropout: break;
    }
  }
  return f;
}

// The bytes a typed array's elements occupy (whatever backs it: an ArrayBuffer or a SharedArrayBuffer).
struct ElementBytes {
  const unsigned char* begin = nullptr;
  std::size_t bytes = 0;
};

ElementBytes elementBytes(const Napi::Value& v) {
  napi_typedarray_type type;
  std::size_t n = 0;
  void* data = nullptr;
  if (!v.IsTypedArray() || napi_get_typedarray_info(v.Env(), v, &type, &n, &data, nullptr, nullptr) != napi_ok) return {};
  std::size_t width = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: width = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: width = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: width = 8; break;
    default: break;
  }
  return {static_cast<const unsigned char*>(data), n * width};
}

// The caller's Float32Array that a step writes its output into (instead of a new array each step): exactly the
// output's length, not detached, sharing no memory with the step's input (the input is copied before the step
// runs, so an overlap would be harmless, but it is almost certainly a mistake: refused rather than guessed at).
float* outputTarget(const Napi::Value& out, std::size_t floats, const Napi::Value& input) {
  if (!out.IsTypedArray() || out.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(ErrorCode::Type, "options.output must be a Float32Array, got " + typeName(out));
  napi_typedarray_type type;
  std::size_t n = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_get_typedarray_info(out.Env(), out, &type, &n, &data, &buffer, nullptr) != napi_ok)
    fail(ErrorCode::Type, "options.output could not be read as a Float32Array");
  bool detached = false;
  if (buffer && napi_is_detached_arraybuffer(out.Env(), buffer, &detached) == napi_ok && detached)
    fail(ErrorCode::State, "options.output is detached (its ArrayBuffer was transferred or its memory released)");
  if (n != floats)
    fail(ErrorCode::Shape, "options.output has " + std::to_string(n) + " elements, this step's output has " +
                               std::to_string(floats));
  const ElementBytes in = elementBytes(input);
  const auto* o = static_cast<const unsigned char*>(data);
  if (in.bytes && floats && o < in.begin + in.bytes && in.begin < o + floats * sizeof(float))
    fail(ErrorCode::Argument, "options.output shares memory with the step's input; pass a separate array");
  return static_cast<float*>(data);
}

// A forward over the stream's state: it starts from the kept state and leaves the final state there.
struct StreamStepJob : JobBase {
  StreamStepJob(StreamHandle::Use u, const Napi::CallbackInfo& info, int vocabSize)
      : use(std::move(u)), input(parseSequenceInput(info.Length() > 0 ? info[0] : info.Env().Undefined(), vocabSize)) {}
  // The lean form of a step (ModelStream's): the input's data, its shape as a rank and its dimensions given one by
  // one (the caller reads them from its array: no array is walked here), no options object to parse; and
  // optionally the Float32Array to write the output into. Arguments: data, rank, d0, d1, d2, output (a token
  // model: ids, and the output at the same place).
  StreamStepJob(StreamHandle::Use u, const Network& net, const Napi::CallbackInfo& info)
      : use(std::move(u)), lean(true) {
    auto arg = [&](std::size_t i) { return i < info.Length() ? info[i] : info.Env().Undefined(); };
    const Napi::Value data = arg(0);
    input.batchFirst = true;
    if (net.vocabSize() > 0) {
      // One row of token ids, any number of steps.
      input.tokens = readInt32(data, "the step's token ids");
      input.shape = {1, (long long)input.tokens.size()};
    } else {
      const char* form = "a step takes { data, shape } with shape [batch, features] or [batch, time, features] "
                         "and as many values as the shape says";
      input.x = readFloat32(data, "the step's input data");
      const Napi::Value rankValue = arg(1);
      const double rank = rankValue.IsNumber() ? rankValue.As<Napi::Number>().DoubleValue() : 0;
      if (rank != 2 && rank != 3) fail(ErrorCode::Shape, std::string(form) + " (the shape has " +
                                                              (rankValue.IsNumber() ? numberText(rank) : typeName(rankValue)) +
                                                              " dimensions)");
      // [batch, features] is one step of each row.
      const char* what = "the step's input shape";
      input.shape = {readDim(arg(2), what, 0), rank == 3 ? readDim(arg(3), what, 1) : 1,
                     readDim(arg(rank == 3 ? 4 : 3), what, rank == 3 ? 2 : 1)};
      long long count = 1;
      for (long long d : input.shape) count = d > 0 && count > (1LL << 40) / d ? (1LL << 41) : count * d;
      if (count != (long long)input.x.size()) fail(ErrorCode::Shape, form);
    }
    const Napi::Value output = arg(5);
    if (!output.IsUndefined()) {
      const OutputForm form = outputForm(net.modelSpec());
      const long long rows = input.shape[0], steps = form.sequence ? input.shape[1] : 1;
      outputRef = Napi::Persistent(output.As<Napi::Object>());
      outputTarget(output, (std::size_t)(rows * steps * form.features), data);
    }
  }
  void run(Network& net) { result = net.forward(input, false, use.state(), /*finalState=*/false); }
  // About one multiply-add per parameter and input row-step (NetworkHandle::run runs small steps inline).
  double multiplyAdds(const Network& net) const {
    // Rows and steps: every dimension of token ids, all but the features of dense input.
    const std::size_t dims = input.tokens.empty() && !input.shape.empty() ? input.shape.size() - 1 : input.shape.size();
    double rowSteps = 1;
    for (std::size_t i = 0; i < dims; ++i) rowSteps *= (double)input.shape[i];
    return rowSteps * (double)net.layout().total();
  }
  // { output: tensor } for the object form. The lean form gives the output's Float32Array alone (a new one, or the
  // caller's): ModelStream makes the tensor around it, since an object and a shape array built through N-API cost
  // more than the rest of a small step's crossing (its shape follows from outputForm()).
  Napi::Value toJs(Napi::Env env) const {
    if (!lean) {
      Napi::Object out = Napi::Object::New(env);
      setField(out, Key::Output, toTensor(env, result.output, result.shape));
      return out;
    }
    if (outputRef.IsEmpty()) return toFloat32Array(env, result.output);
    // Checked again: an awaited step's array may have been detached while the step waited or ran.
    const Napi::Value given = outputRef.Value();
    float* dst = outputTarget(given, result.output.size(), env.Undefined());
    if (!result.output.empty()) std::memcpy(dst, result.output.data(), result.output.size() * sizeof(float));
    return given;
  }
  // A step still queued when its stream is disposed does not run.
  const char* cancelReason() const { return use.disposed() ? "this stream has been disposed (before the step ran)" : nullptr; }

  StreamHandle::Use use;
  SequenceInput input;
  SequenceOutput result;
  Napi::ObjectReference outputRef;  // the caller's Float32Array, or empty: a new array
  bool lean = false;                // made by stepData: resolves to the tensor itself
};

// A model whose outputs at a step depend on later steps (a bidirectional or backwards layer) cannot be fed one step
// at a time: its stream would silently give other outputs than a forward over the whole sequence.
void requireStreamable(const Network& net) {
  for (const StageSpec& st : net.modelSpec().stages) {
    if (st.kind != StageKind::Recurrent) continue;
    if (st.bidirectional || st.goBackwards)
      fail(ErrorCode::Unsupported, (st.prefix.size() > 1 ? "layer '" + st.prefix.substr(0, st.prefix.size() - 1) + "'"
                                                          : std::string("the recurrent layer")) +
                                       " reads the sequence " +
                                       (st.bidirectional ? "in both directions" : "backwards") +
                                       ": its output at a step needs the whole sequence, so the model cannot be run "
                                       "one step at a time (stream, generate); use predict on whole sequences");
  }
}

}  // namespace

StreamHandle::Use::Use(StreamHandle* s) : s_(s) {
  if (s_->disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  ++s_->uses_;
}

StreamHandle::Use::~Use() {
  if (!s_) return;
  if (--s_->uses_ == 0 && s_->disposed_) s_->releaseState();
}

RecurrentState* StreamHandle::Use::state() const { return s_->state_.get(); }
bool StreamHandle::Use::disposed() const { return s_->disposed_; }

Napi::Function StreamHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Stream", {});
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  proto.Set("step", Napi::Function::New(env, dispatch<&StreamHandle::Step>, "step"));
  proto.Set("stepSync", Napi::Function::New(env, dispatch<&StreamHandle::StepSync>, "stepSync"));
  proto.Set("stepData", Napi::Function::New(env, dispatch<&StreamHandle::StepData>, "stepData"));
  proto.Set("stepDataSync", Napi::Function::New(env, dispatch<&StreamHandle::StepDataSync>, "stepDataSync"));
  proto.Set("outputForm", Napi::Function::New(env, dispatch<&StreamHandle::DescribeOutput>, "outputForm"));
  proto.Set("reset", Napi::Function::New(env, dispatch<&StreamHandle::Reset>, "reset"));
  proto.Set("dispose", Napi::Function::New(env, dispatch<&StreamHandle::Dispose>, "dispose"));
  return ctor;
}

StreamHandle::StreamHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamHandle>(info) {
  guard(info.Env(), [&] {
    if (info.Length() < 1 || !info[0].IsObject())
      fail(ErrorCode::Type, "a Stream is made from a Network: new Stream(network)");
    Napi::Object net = info[0].As<Napi::Object>();
    network_ = NetworkHandle::fromObject(net, "the argument of new Stream()");
    // A stream may be opened while the network runs a call: its steps wait in the network's queue.
    network_->checkOpen();
    requireStreamable(network_->network());
    networkRef_ = Napi::Persistent(net);
    backend_ = network_->backend();
    state_ = std::make_unique<RecurrentState>(backend_.get());
    info.This().As<Napi::Object>().TypeTag(&kStreamTag);
    return info.Env().Undefined();
  });
}

StreamHandle* StreamHandle::fromThis(const Napi::CallbackInfo& info) {
  Napi::Value self = info.This();
  if (!self.IsObject() || !self.As<Napi::Object>().CheckTypeTag(&kStreamTag))
    fail(ErrorCode::Type, "this method must be called on a Stream");
  return Unwrap(self.As<Napi::Object>());
}

Napi::Value StreamHandle::run(const Napi::CallbackInfo& info, bool async) {
  // Checked before the network is touched: a disposed stream no longer keeps its network alive.
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  NetworkHandle* net = network_;
  return net->run<StreamStepJob>(info.Env(), async, info.This().As<Napi::Object>(), [&] {
    Use use(this);  // before the arguments are read: a getter may dispose the stream
    const int vocabSize = net->network().vocabSize();
    StreamStepJob job(std::move(use), info, vocabSize);
    if (job.use.disposed()) fail(ErrorCode::Disposed, "this stream has been disposed (while the step read its arguments)");
    return job;
  });
}

Napi::Value StreamHandle::runData(const Napi::CallbackInfo& info, bool async) {
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  NetworkHandle* net = network_;
  return net->run<StreamStepJob>(info.Env(), async, info.This().As<Napi::Object>(), [&] {
    Use use(this);  // before the arguments are read: a getter may dispose the stream
    StreamStepJob job(std::move(use), net->network(), info);
    if (job.use.disposed()) fail(ErrorCode::Disposed, "this stream has been disposed (while the step read its arguments)");
    return job;
  });
}

Napi::Value StreamHandle::StepData(const Napi::CallbackInfo& info) {
  return rejectOnThrow(info.Env(), [&] { return runData(info, true); });
}

Napi::Value StreamHandle::StepDataSync(const Napi::CallbackInfo& info) { return runData(info, false); }

Napi::Value StreamHandle::Step(const Napi::CallbackInfo& info) {
  return rejectOnThrow(info.Env(), [&] { return run(info, true); });
}

Napi::Value StreamHandle::StepSync(const Napi::CallbackInfo& info) { return run(info, false); }

Napi::Value StreamHandle::DescribeOutput(const Napi::CallbackInfo& info) {
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  const OutputForm form = outputForm(network_->network().modelSpec());
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("features", Napi::Number::New(info.Env(), (double)form.features));
  o.Set("sequence", Napi::Boolean::New(info.Env(), form.sequence));
  return o;
}

Napi::Value StreamHandle::Reset(const Napi::CallbackInfo& info) {
  if (disposed_) fail(ErrorCode::Disposed, "this stream has been disposed");
  if (uses_ > 0) fail(ErrorCode::Busy, "a step of this stream is in flight; await it before reset()");
  state_->batch = 0;
  return info.Env().Undefined();
}

Napi::Value StreamHandle::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) {
    disposed_ = true;
    if (uses_ == 0) releaseState();  // else when the last step settles
  }
  return info.Env().Undefined();
}

void StreamHandle::releaseState() {
  state_.reset();
  backend_.reset();
  networkRef_.Reset();
}

}  // namespace rnnkit::addon
