#!/usr/bin/env bash
# Sets up, builds and runs every test (GoogleTest suites, MPI suites under mpirun, Python
# reference tests) through CTest. Extra arguments go to ctest (e.g. -R parity, -L mpi).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$LS_ROOT/tools/setup.sh"
build_dir="${LS_BUILD_DIR:-$LS_ROOT/build}"
# The optional parts (ls_serve, tokenizer.json) are required here: a missing library fails the
# build instead of quietly taking its tests out of the suite.
export LS_REQUIRE_OPTIONAL=1
"$LS_ROOT/tools/build.sh" "$build_dir"
ls_log "running tests"
log="$build_dir/ctest.log"
set +e
ctest --test-dir "$build_dir" --output-on-failure -j "${LS_TEST_JOBS:-2}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# What ran: CTest counts a skipped test apart from a passed one (GoogleTest's SKIPPED and
# unittest's skipped=N are reported as skips, tests/CMakeLists.txt). A skip is expected only for a
# cuda-labelled test on a machine without a GPU; any other skip fails the run.
total=$(sed -n 's/.* tests failed out of \([0-9]*\)$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of .*/\1/p' "$log" | tail -1)
mapfile -t skipped < <(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log")
mapfile -t cuda_tests < <(ctest --test-dir "$build_dir" -N -L cuda | sed -n 's/^ *Test *#[0-9]*: *//p')
gpu=0
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && gpu=1
unexpected=()
for t in "${skipped[@]}"; do
  if [ "$gpu" = 1 ] || ! printf '%s\n' "${cuda_tests[@]}" | grep -qx -- "$t"; then unexpected+=("$t"); fi
done
ls_log "tests: ${total:-0} run, ${failed:-0} failed, ${#skipped[@]} skipped" \
       "(expected here: the cuda-labelled ones$([ "$gpu" = 1 ] && echo ', none: a GPU is visible' || echo ' without a GPU'))"
if [ ${#unexpected[@]} -gt 0 ]; then
  ls_log "unexpected skips (this machine should run them): ${unexpected[*]}"
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
