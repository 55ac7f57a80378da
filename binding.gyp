{
  "targets": [
    {
      "target_name": "rnnkit",
      "sources": [
        "native/core/cell.cc",
        "native/core/error.cc",
        "native/core/network.cc",
        "native/core/network_spec.cc",
        "native/core/optimizer.cc",
        "native/core/recurrent_layer.cc",
        "native/core/model_spec.cc",
        "native/core/stage.cc",
        "native/core/embedding_stage.cc",
        "native/core/recurrent_stage.cc",
        "native/core/dense_stage.cc",
        "native/core/dropout_stage.cc",
        "native/core/sampling.cc",
        "native/cpu/cell_kernels.cc",
        "native/cpu/cpu_backend.cc",
        "native/cpu/gemm_builtin.cc",
        "native/cpu/layer_kernels.cc",
        "native/cpu/optimizer_kernels.cc",
        "native/cpu/system_blas.cc",
        "native/cpu/thread_pool.cc",
        "native/addon/js_convert.cc",
        "native/addon/js_errors.cc",
        "native/addon/module.cc",
        "native/addon/network_handle.cc",
        "native/addon/network_jobs.cc",
        "native/addon/stream_handle.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fvisibility=hidden"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"] }
      }
    }
  ]
}
