#!/usr/bin/env bash
# Sets up, builds and runs every test (GoogleTest suites, MPI suites under mpirun, Python
# reference tests) through CTest. Extra arguments go to ctest (e.g. -R parity, -L mpi).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$LS_ROOT/tools/setup.sh"
build_dir="${LS_BUILD_DIR:-$LS_ROOT/build}"
"$LS_ROOT/tools/build.sh" "$build_dir"
ls_log "running tests"
ctest --test-dir "$build_dir" --output-on-failure -j "${LS_TEST_JOBS:-2}" "$@"
