{
  "variables": {
    # Baseline instruction set for distributed binaries, e.g. x86-64-v2 (.ci/prebuild-linux.sh sets it through
    # npm_config_rnnkit_march); empty for a build from source, which keeps the compiler's default.
    "rnnkit_march%": "",
    # 1 for a prebuilt Linux binary meant for other machines: libstdc++ linked in statically (and kept private), and
    # recent glibc symbols bound to their old versions (native/compat/glibc_compat.c). Set by .ci/prebuild-linux.sh.
    "rnnkit_portable%": 0
  },
  "targets": [
    {
      "target_name": "rnnkit",
      "sources": [
        "native/core/attention_kernels.cc",
        "native/core/backend.cc",
        "native/core/cell.cc",
        "native/core/error.cc",
        "native/core/graph_network.cc",
        "native/core/graph_stages.cc",
        "native/core/network.cc",
        "native/core/network_spec.cc",
        "native/core/optimizer.cc",
        "native/core/parameter_store.cc",
        "native/core/recurrent_layer.cc",
        "native/core/model_spec.cc",
        "native/core/stage.cc",
        "native/core/embedding_stage.cc",
        "native/core/recurrent_stage.cc",
        "native/core/dense_stage.cc",
        "native/core/dropout_stage.cc",
        "native/core/sampling.cc",
        "native/core/seq2seq.cc",
        "native/core/json_reader.cc",
        "native/core/safetensors_reader.cc",
        "native/cpu/attention_kernels.cc",
        "native/cpu/cell_kernels.cc",
        "native/cpu/cpu_backend.cc",
        "native/cpu/gemm_builtin.cc",
        "native/cpu/gemm_select.cc",
        "native/cpu/int8_gemm.cc",
        "native/cpu/layer_kernels.cc",
        "native/cpu/simd_dispatch.cc",
        "native/cpu/step_gemv.cc",
        "native/cpu/optimizer_kernels.cc",
        "native/cpu/recurrent_step.cc",
        "native/cpu/system_blas.cc",
        "native/cpu/thread_pool.cc",
        "native/cpu/thread_priority.cc",
        "native/addon/graph_handle.cc",
        "native/addon/js_convert.cc",
        "native/addon/js_errors.cc",
        "native/addon/module.cc",
        "native/addon/network_handle.cc",
        "native/addon/network_jobs.cc",
        "native/addon/property_keys.cc",
        "native/addon/safetensors_js.cc",
        "native/addon/seq2seq_handle.cc",
        "native/addon/stream_handle.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-trapping-math", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-pthread"],
      "conditions": [
        ["rnnkit_march!=''", { "cflags": ["-march=<(rnnkit_march)"] }],
        ["rnnkit_portable==1 and OS=='linux'", {
          "sources": ["native/compat/glibc_compat.c"],
          "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL", "-Wl,--version-script=<(module_root_dir)/native/compat/exports.map",
                      "-Wl,--no-as-needed", "-l:libdl.so.2", "-Wl,--as-needed"]
        }]
      ],
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
