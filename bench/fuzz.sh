#!/usr/bin/env bash
# Fuzzing: runs each of the eight libFuzzer targets of tests/fuzz (config, units, ingest_judge,
# sim_request, webhook, http1_response, h2_session, sse; clang, ASan + UBSan; preset
# `fuzz`) for RUNS executions (default one million), one target after another, starting from its
# checked-in corpus, and prints executions, exec/s, coverage and new inputs per target. Exits 1 if
# a target crashed, leaked, timed out or ran out of memory; the input that did it is kept under
# build-fuzz/findings/NAME/ and printed:
# copy it into tests/fuzz/corpus/NAME/ and it becomes a regression test (ctest label `fuzz`
# replays the corpus in every build).
#   bench/fuzz.sh                                   # every target, 1,000,000 executions each
#   bench/fuzz.sh config units                      # some targets
#   RUNS=20000 bench/fuzz.sh                        # a smoke run
#   MAX_SECONDS=300 bench/fuzz.sh                   # also stop each target after 5 minutes
#   JOBS=1 nice -n 15 bench/fuzz.sh                 # build with one job, on a shared box
# New interesting inputs go to build-fuzz/findings/NAME/corpus (MERGE=1 merges them into
# tests/fuzz/corpus/NAME, minimised, for a commit). Nothing listens on the network.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

RUNS=${RUNS:-1000000}
MAX_SECONDS=${MAX_SECONDS:-0}
MERGE=${MERGE:-0}
ALL=(config units ingest_judge sim_request webhook http1_response h2_session sse)  # = POLAR_FUZZ_TARGETS in tests/fuzz/CMakeLists.txt
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

if ! command -v clang++ >/dev/null || ! compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null; then
  echo "bench/fuzz.sh: needs clang and libFuzzer (scripts/deps fuzz)" >&2
  exit 77
fi
if [ "${BUILD:-1}" = 1 ]; then  # BUILD=0: use the binaries as they are
  [ -f build-fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "${JOBS:-$(nproc)}" >/dev/null
fi

# The same sanitizer settings as the asan test preset; a leak fails the run too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
printf '%-13s %12s %9s %8s %6s %7s  %s\n' target executions exec/s seconds cov corpus result
for name in "${targets[@]}"; do
  bin=build-fuzz/bin/${name}_fuzz
  seeds=tests/fuzz/corpus/$name
  out=build-fuzz/findings/$name
  [ -x "$bin" ] && [ -d "$seeds" ] || { echo "unknown target: $name" >&2; exit 64; }
  mkdir -p "$out/corpus"
  args=(-runs="$RUNS" -max_total_time="$MAX_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536
    -print_final_stats=1 -artifact_prefix="$out/")
  [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
  start=$(date +%s.%N)
  rc=0
  "$bin" "${args[@]}" "$out/corpus" "$seeds" >"$out/log" 2>&1 || rc=$?
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$out/log" | tail -1 | cut -d' ' -f2)
  files=$(find "$out/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc): $(grep -oE "(Test unit|artifact_prefix.*written to) [^ ]*" "$out/log" | tail -1)"
    status=1
  fi
  printf '%-13s %12s %9s %8s %6s %7s  %s\n' "$name" "${execs:-?}" "${speed:-?}" "$seconds" \
    "${cov:-?}" "$files" "$result"
  [ "$rc" -eq 0 ] || grep -E 'ERROR|SUMMARY|runtime error' "$out/log" | head -5 | sed 's/^/    /'
  if [ "$MERGE" = 1 ] && [ "$rc" -eq 0 ]; then
    "$bin" -merge=1 "${args[@]:1}" "$seeds" "$out/corpus" >>"$out/log" 2>&1
  fi
done
[ "$status" -eq 0 ] || echo "logs: build-fuzz/findings/NAME/log; add each crashing input to tests/fuzz/corpus/NAME/" >&2
exit "$status"
