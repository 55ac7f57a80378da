#!/usr/bin/env bash
# Builds the libFuzzer target of the native safetensors reader with AddressSanitizer and UndefinedBehaviorSanitizer
# (clang; on Debian: apt-get install clang libclang-rt-14-dev), replays the inputs of past findings kept in
# regressions/, then fuzzes from the generated seeds plus the PyTorch fixtures, bounded in time or executions.
#
#   test/native/fuzz/run.sh [--time SECONDS] [--runs N] [--corpus DIR]
#
# The default is --time 60. The corpus (default build/fuzz/corpus) keeps what the campaign learned between runs;
# findings land in build/fuzz/findings/, which each run empties first. The last line is "fuzz: N executions in S s, corpus C inputs,
# coverage E edges / F features, findings K"; the exit status is nonzero when K > 0 or a regression input fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="$root/build/fuzz"
corpus="$work/corpus"
limit=(-max_total_time=60)

while [ $# -gt 0 ]; do
  case "$1" in
    --time) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

CXX="${FUZZ_CXX:-clang++}"
fuzzer="$work/safetensors_fuzzer"
rm -rf "$work/findings"
mkdir -p "$work" "$corpus" "$work/findings"
echo "fuzz: building with $("$CXX" --version | head -n 1)"
"$CXX" -std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  "$here/safetensors_fuzzer.cc" \
  "$root/native/core/safetensors_reader.cc" "$root/native/core/json_reader.cc" "$root/native/core/error.cc" \
  -o "$fuzzer"

rm -rf "$work/seeds"
python3 "$here/make_seeds.py" "$work/seeds"
cp "$root"/test/fixtures/torch/*.safetensors "$work/seeds/"

# Every input that once was a finding must now be handled (running the fuzzer on files executes each once).
shopt -s nullglob
regressions=("$here"/regressions/*)
if [ "${#regressions[@]}" -gt 0 ]; then
  "$fuzzer" "${regressions[@]}" >"$work/regressions.log" 2>&1 || {
    cat "$work/regressions.log"
    echo "fuzz: a regression input fails again"
    exit 1
  }
  echo "fuzz: ${#regressions[@]} regression inputs pass"
fi

# Inputs up to 64 KiB; a single allocation or the whole process past the memory limits is a finding, as is an
# input that takes more than 10 s (the reader is linear in the file, so that would be a hang).
log="$work/campaign.log"
rc=0
"$fuzzer" "${limit[@]}" -dict="$here/safetensors.dict" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$work/findings/" "$corpus" "$work/seeds" \
  >"$log" 2>&1 || rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done|^stat::|ERROR|SUMMARY' "$log" | head -n 40 || true

execs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
seconds="$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)"
status="$(grep -E '^#[0-9]+[[:space:]].* cov: ' "$log" | tail -n 1 || true)"
coverage="$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/\1 edges \/ \2 features/p' <<<"$status")"
kept="$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$status")"
findings="$(find "$work/findings" -type f | wc -l)"
if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then
  tail -n 40 "$log"
  findings=1
fi
echo "fuzz: findings (if any) in $work/findings; full log $log"
echo "fuzz: ${execs:-0} executions in ${seconds:-?} s, corpus ${kept:-?} inputs, coverage ${coverage:-?}, findings $findings"
[ "$findings" -eq 0 ]
