#!/usr/bin/env bash
# The GPU check of the CUDA backend, for a lent GPU machine (../shared/device.md): builds the CUDA addon with plain
# CMake, runs the conformance cases and the CPU/GPU parity checks on the GPU, runs the conformance cases under
# compute-sanitizer, and times GPU workloads against PyTorch/cuDNN. Everything lands in $OUT (default ./device-out):
#
#   steps.log          what ran, how long, and its exit status
#   machine.txt        nvidia-smi, nvcc, cmake, PyTorch
#   build.log          the CMake configure and build
#   devices.json       rnnkit.devices()
#   conformance-cpu.txt, conformance-cuda.txt, parity.txt, sanitizer.txt
#   bench-rnnkit.json, bench-torch.json, summary.md   (FP32; with DEVICE_CHECK_TF32=1 also *-tf32.*)
#
# First, on a machine with node and npm:  bash .ci/device-prepare.sh
# Then, with the device tool:             bash .ci/device-check.sh
#   carry: [".device", "dist", "node_modules/node-addon-api", "node_modules/node-gyp-build"], timeout_s 540
#
# Environment: DEVICE_CHECK_ARCH (CUDA architecture to build, default: the GPU's own, e.g. 90), DEVICE_CHECK_CLEAN=1,
# DEVICE_CHECK_SKIP_BENCH=1, DEVICE_CHECK_SKIP_SANITIZER=1, DEVICE_CHECK_TF32=1, DEVICE_CHECK_BUDGET_S (default 500:
# later optional steps are skipped once this much time has passed).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
OUT="${OUT:-$root/device-out}"
mkdir -p "$OUT"
budget="${DEVICE_CHECK_BUDGET_S:-500}"
STARTED=$SECONDS
FAILURES=0

log() { echo "[$((SECONDS - STARTED)) s] $*" | tee -a "$OUT/steps.log"; }
# step NAME TIMEOUT_S LOGFILE COMMAND...: runs it with a time limit, output to LOGFILE (and the last lines here).
step() {
  local name="$1" limit="$2" file="$3"
  shift 3
  log "start: $name"
  local rc=0
  timeout --kill-after=10 "$limit" "$@" > "$file" 2>&1 || rc=$?
  log "end:   $name: exit status $rc"
  tail -n 15 "$file"
  if [ "$rc" -ne 0 ]; then FAILURES=$((FAILURES + 1)); fi
  return "$rc"
}
time_left() { [ $((SECONDS - STARTED)) -lt "$budget" ]; }

# ---- node (no Node.js on the device: it travels xz'd in .device) --------------------------------------------------
if [ ! -f .device/node.xz ]; then
  echo "device-check: .device/node.xz is missing: run bash .ci/device-prepare.sh and carry .device" >&2
  exit 2
fi
mkdir -p /tmp/nodebin
python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/node.xz'),open('/tmp/nodebin/node','wb'))"
chmod +x /tmp/nodebin/node
export PATH="/tmp/nodebin:/usr/local/cuda/bin:$PATH"
log "node $(node --version)"

{
  nvidia-smi || true
  nvcc --version || true
  cmake --version | head -n 1 || true
  ninja --version 2>/dev/null | sed 's/^/ninja /' || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" || true
  ls /usr/local/cuda/lib64 2>/dev/null | grep -i cublas || true
} > "$OUT/machine.txt" 2>&1
head -n 20 "$OUT/machine.txt"

# ---- build ------------------------------------------------------------------------------------------------------
arch="${DEVICE_CHECK_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')}"
arch="${arch:-90}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
build_dir=build-cuda-device
# Kept between calls on a warm machine (an incremental rebuild); DEVICE_CHECK_CLEAN=1 starts afresh.
if [ "${DEVICE_CHECK_CLEAN:-0}" = 1 ]; then rm -rf "$build_dir"; fi
if ! step "configure (sm_$arch)" 120 "$OUT/configure.log" \
    cmake -S . -B "$build_dir" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release -DRNNKIT_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DNODE_INCLUDE_DIR="$root/.device/node-include" \
    -DNODE_ADDON_API_DIR="$root/node_modules/node-addon-api"; then
  cat "$OUT/configure.log" > "$OUT/build.log"
  echo "device-check: configure failed"
  exit 1
fi
step "build" 300 "$OUT/compile.log" cmake --build "$build_dir" --parallel "$(nproc)"
cat "$OUT/configure.log" "$OUT/compile.log" > "$OUT/build.log"
if [ ! -f "$build_dir/Release/rnnkit.node" ]; then
  echo "device-check: the build produced no $build_dir/Release/rnnkit.node"
  exit 1
fi
# Where the loader (node-gyp-build, from dist/native.js) looks first.
mkdir -p build/Release
cp "$build_dir/Release/rnnkit.node" build/Release/rnnkit.node

# ---- checks -----------------------------------------------------------------------------------------------------
step "devices" 60 "$OUT/devices.json" node -e "console.log(JSON.stringify(require('./dist/native').native.devices(), null, 2))"
golden=.device/golden
[ -d "$golden" ] || golden=test/fixtures/golden
step "conformance, CPU device" 120 "$OUT/conformance-cpu.txt" node dist/conformance/cli.js "$golden"
step "conformance, CUDA device" 120 "$OUT/conformance-cuda.txt" \
  env RNNKIT_CONFORMANCE_DEVICE=cuda node dist/conformance/cli.js "$golden"
step "parity CPU vs CUDA" 180 "$OUT/parity.txt" node bench/gpu/parity.js cuda
grep -E '^FAIL' "$OUT/parity.txt" | head -n 20

# ---- benchmarks -------------------------------------------------------------------------------------------------
if [ "${DEVICE_CHECK_SKIP_BENCH:-0}" != 1 ] && time_left; then
  step "bench rnnkit (FP32)" 150 "$OUT/bench-rnnkit.log" \
    sh -c "node bench/gpu/rnnkit_bench.js --device cuda > '$OUT/bench-rnnkit.json'"
  step "bench PyTorch cuDNN (FP32)" 150 "$OUT/bench-torch.log" \
    sh -c "python3 bench/gpu/torch_bench.py --device cuda > '$OUT/bench-torch.json'"
  python3 bench/gpu/compare.py "$OUT/bench-rnnkit.json" "$OUT/bench-torch.json" \
    "rnnkit (CUDA) vs PyTorch (cuDNN), FP32" > "$OUT/summary.md"
  if [ "${DEVICE_CHECK_TF32:-0}" = 1 ] && time_left; then
    step "bench rnnkit (TF32)" 150 "$OUT/bench-rnnkit-tf32.log" \
      sh -c "RNNKIT_CUDA_TF32=1 node bench/gpu/rnnkit_bench.js --device cuda > '$OUT/bench-rnnkit-tf32.json'"
    step "bench PyTorch cuDNN (TF32)" 150 "$OUT/bench-torch-tf32.log" \
      sh -c "python3 bench/gpu/torch_bench.py --device cuda --tf32 > '$OUT/bench-torch-tf32.json'"
    python3 bench/gpu/compare.py "$OUT/bench-rnnkit-tf32.json" "$OUT/bench-torch-tf32.json" \
      "rnnkit (CUDA) vs PyTorch (cuDNN), TF32" >> "$OUT/summary.md"
  fi
else
  log "benchmarks skipped"
fi

# ---- memory errors in the kernels (slow: the small conformance cases only) ----------------------------------------
sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
if [ "${DEVICE_CHECK_SKIP_SANITIZER:-0}" != 1 ] && [ -n "$sanitizer" ] && time_left; then
  step "compute-sanitizer memcheck, conformance" 150 "$OUT/sanitizer.txt" \
    env RNNKIT_CONFORMANCE_DEVICE=cuda "$sanitizer" --tool memcheck --error-exitcode 99 \
    node dist/conformance/cli.js "$golden"
else
  log "compute-sanitizer skipped (not found, disabled, or out of time)"
fi

echo
[ -f "$OUT/summary.md" ] && cat "$OUT/summary.md"
echo
for f in conformance-cpu conformance-cuda parity; do
  [ -f "$OUT/$f.txt" ] && echo "$f: $(tail -n 1 "$OUT/$f.txt")"
done
log "done: $FAILURES step(s) failed"
[ "$FAILURES" -eq 0 ]
