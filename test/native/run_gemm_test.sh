#!/usr/bin/env bash
# Builds test/native/gemm_test.cc with the CPU GEMM sources and runs it in several configurations:
# pool sizes 1 and 2, and every micro-kernel this CPU can execute (forced with RNNKIT_GEMM_KERNEL).
# The last configuration also prints the GFLOP/s table. Usage: test/native/run_gemm_test.sh [--no-bench]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${TMPDIR:-/tmp}/rnnkit_gemm_test.$$"
trap 'rm -f "$out"' EXIT

CXX="${CXX:-g++}"
"$CXX" -std=c++17 -O2 -pthread -Wall -Wextra \
  "$here/gemm_test.cc" \
  "$root/native/cpu/gemm_builtin.cc" \
  "$root/native/cpu/gemm_select.cc" "$root/native/cpu/system_blas.cc" \
  "$root/native/cpu/thread_pool.cc" "$root/native/cpu/thread_priority.cc" \
  -o "$out" -ldl

bench=1
for arg in "$@"; do [ "$arg" = "--no-bench" ] && bench=0; done

total_pass=0
total_fail=0
status=0
run() {
  local log
  echo "== $*"
  if ! log="$(env "$@" 2>&1)"; then status=1; fi
  echo "$log" | grep -v '^  mismatch' | tail -n 30
  local last
  last="$(echo "$log" | tail -n 1)"
  if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    total_pass=$((total_pass + BASH_REMATCH[1]))
    total_fail=$((total_fail + BASH_REMATCH[2]))
  else
    echo "(no summary line: the test crashed)"
    total_fail=$((total_fail + 1))
    status=1
  fi
}

# Forced kernels skip the system BLAS (checked once below); a bogus RNNKIT_BLAS must be reported, not crash.
for kernel in generic avx2; do
  for threads in 1 2; do
    run RNNKIT_GEMM_KERNEL="$kernel" RNNKIT_THREADS="$threads" RNNKIT_BLAS=none "$out" --no-bench
  done
done
run RNNKIT_THREADS=3 RNNKIT_BLAS=/nonexistent/libnoblas.so "$out" --no-bench
# The default rule (no system BLAS looked for where the built-in kernel is SIMD), then the system BLAS when one is
# installed (RNNKIT_BLAS=system searches for it whatever the default), against which the table compares.
run RNNKIT_THREADS=1 "$out" --no-bench
run RNNKIT_THREADS=1 RNNKIT_BLAS=system "$out" --no-bench
if [ "$bench" = 1 ]; then
  run RNNKIT_THREADS=2 RNNKIT_BLAS=system "$out"
else
  run RNNKIT_THREADS=2 RNNKIT_BLAS=system "$out" --no-bench
fi

echo "$total_pass passed, $total_fail failed"
[ "$status" = 0 ] && [ "$total_fail" = 0 ]
