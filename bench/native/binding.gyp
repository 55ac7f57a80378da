{
  # The benchmark harness's native module (bench/native/bench_addon.cc): the GEMM roofline, the memory-read floor and the
  # arithmetic peak, measured with the project's CPU kernels. Built by bench/run.js on first use; never part of the npm package.
  "targets": [
    {
      "target_name": "rnnkit_bench",
      "sources": [
        "bench_addon.cc",
        "peak_bench.cc",
        "read_bench.cc",
        "../../native/cpu/gemm_builtin.cc",
        "../../native/cpu/gemm_select.cc",
        "../../native/cpu/simd_dispatch.cc",
        "../../native/cpu/system_blas.cc",
        "../../native/cpu/thread_pool.cc",
        "../../native/cpu/thread_priority.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-trapping-math", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-pthread"]
    }
  ]
}
