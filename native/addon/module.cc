// The module's entry point: the Network class and the process-level queries.
#include <napi.h>

#include <cstring>
#include <thread>
#include <vector>

#include "../core/error.h"
#include "../core/sampling.h"
#include "js_convert.h"
#include "../cpu/cpu_backend.h"
#include "../cpu/gemm.h"
#include "../cpu/int8_gemm.h"
#include "../cpu/step_gemv.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "device.h"
#include "js_errors.h"
#include "network_handle.h"
#include "network_jobs.h"
#include "safetensors_js.h"
#include "graph_handle.h"
#include "seq2seq_handle.h"
#include "stream_handle.h"

namespace rnnkit::addon {

namespace {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const cpu::SystemBlas& blas = cpu::SystemBlas::instance();
  o.Set("device", "cpu");
  o.Set("gemm", cpuBackend().gemmName());
  o.Set("blas", blas.available() ? blas.name() : std::string("none"));
  o.Set("blasDetail", blas.detail());
  o.Set("builtinKernel", cpu::builtinKernelName());
  o.Set("int8Kernel", cpu::int8KernelName());
  o.Set("stepKernel", cpu::stepGemvKernelName());
  o.Set("threads", cpu::ThreadPool::instance().size());
  o.Set("hardwareThreads", (double)std::thread::hardware_concurrency());
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    double n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(n >= 1 && n <= 1024) || (double)(int)n != n)
      fail(ErrorCode::Value, "setThreads needs an integer in [1, 1024]");
    cpu::ThreadPool::instance().resize((int)n);
    cpu::SystemBlas::instance().setThreads((int)n);
    return info.Env().Undefined();
  });
}

Napi::Value SampleIndex(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    std::vector<float> scores = readFloat32(info.Length() > 0 ? info[0] : info.Env().Undefined(), "scores");
    SamplingOptions o;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      Napi::Object opts = requireObject(info[1], "options");
      checkOptionNames(opts, "sampling options", {"temperature", "topK", "topP", "probabilities"});
      o.temperature = optionalNumber(opts, "temperature", 1.0);
      o.topK = optionalInt(opts, "topK", 0);
      o.topP = optionalNumber(opts, "topP", 1.0);
      o.probabilities = optionalBool(opts, "probabilities", false);
    }
    if (info.Length() < 3 || !info[2].IsNumber()) fail(ErrorCode::Type, "the uniform draw u must be a number");
    return Napi::Number::New(info.Env(), sampleIndex(scores.data(), scores.size(), o, info[2].As<Napi::Number>().DoubleValue()));
  });
}

// checkOptionNames(options, what, knownNames): the one check of option names, for the options read in JavaScript.
Napi::Value CheckOptionNames(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    if (info.Length() < 3 || !info[1].IsString() || !info[2].IsArray())
      fail(ErrorCode::Type, "checkOptionNames(options, what, knownNames)");
    const std::string what = info[1].As<Napi::String>().Utf8Value();
    Napi::Object options = requireObject(info[0], what);
    Napi::Array list = info[2].As<Napi::Array>();
    std::vector<std::string> known;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value v = list.Get(i);
      if (!v.IsString()) fail(ErrorCode::Type, "checkOptionNames: knownNames must be strings");
      known.push_back(v.As<Napi::String>().Utf8Value());
    }
    checkOptionNames(options, what, known);
    return info.Env().Undefined();
  });
}

// copyTensor(value, what, 'float32' | 'int32'): { data, shape } read by the converter every entry point uses (types,
// integers, data length against shape), as a copy the caller can no longer change.
Napi::Value CopyTensor(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&] {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[1].IsString() || !info[2].IsString())
      fail(ErrorCode::Type, "copyTensor(value, what, dtype)");
    const std::string what = info[1].As<Napi::String>().Utf8Value();
    const std::string dtype = info[2].As<Napi::String>().Utf8Value();
    std::vector<long long> shape;
    Napi::Object out = Napi::Object::New(env);
    if (dtype == "float32") {
      out.Set("data", toFloat32Array(env, readFloatTensorData(info[0], what, &shape)));
    } else if (dtype == "int32") {
      std::vector<int32_t> data = readIntTensorData(info[0], what, &shape);
      Napi::Int32Array arr = Napi::Int32Array::New(env, data.size());
      if (!data.empty()) std::memcpy(arr.Data(), data.data(), data.size() * sizeof(int32_t));
      out.Set("data", arr);
    } else {
      fail(ErrorCode::Argument, "copyTensor: dtype must be 'float32' or 'int32'");
    }
    out.Set("shape", toShape(env, shape));
    return out;
  });
}

Napi::Value ErrorCodes(Napi::Env env) {
  const ErrorCode codes[] = {ErrorCode::Argument, ErrorCode::Type,     ErrorCode::Shape,     ErrorCode::Value,
                             ErrorCode::UnknownParam, ErrorCode::State, ErrorCode::Disposed, ErrorCode::Busy,
                             ErrorCode::Format,   ErrorCode::File,     ErrorCode::Device,   ErrorCode::NonFinite,
                             ErrorCode::Unsupported, ErrorCode::OutOfMemory, ErrorCode::Internal};
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  for (ErrorCode c : codes) arr.Set(i++, errorCodeName(c));
  return arr;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Find the system BLAS now, on the thread that requires the addon, rather than inside the first job on a worker.
  cpu::SystemBlas::instance();
  auto* data = new AddonData();
  createPropertyKeys(env, data->keys);
  Napi::Function network = NetworkHandle::define(env);
  data->networkConstructor = Napi::Persistent(network);
  Napi::Function decoder = DecoderHandle::define(env);
  data->decoderConstructor = Napi::Persistent(decoder);
  exports.Set("Seq2Seq", Seq2SeqHandle::define(env));
  exports.Set("Graph", GraphHandle::define(env));
  exports.Set("Decoder", decoder);
  env.SetInstanceData<AddonData>(data);  // deleted by N-API when this environment is torn down
  exports.Set("Network", network);
  exports.Set("Stream", StreamHandle::define(env));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("errorCodes", ErrorCodes(env));
  exports.Set("copyTensor", Napi::Function::New(env, CopyTensor, "copyTensor"));
  exports.Set("checkOptionNames", Napi::Function::New(env, CheckOptionNames, "checkOptionNames"));
  exports.Set("sampleIndex", Napi::Function::New(env, SampleIndex, "sampleIndex"));
  exports.Set("parseSafetensors", Napi::Function::New(env, ParseSafetensors, "parseSafetensors"));
  exports.Set("modelParameters", Napi::Function::New(env, ModelParameters, "modelParameters"));
  return exports;
}

}  // namespace rnnkit::addon

static Napi::Object InitRnnkit(Napi::Env env, Napi::Object exports) { return rnnkit::addon::Init(env, exports); }

NODE_API_MODULE(rnnkit, InitRnnkit)
