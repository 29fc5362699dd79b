#!/usr/bin/env bash
# Configures (first time, or when the Python changed) and builds ls-train: everything, or the
# named targets.
#   tools/build.sh [BUILD_DIR [TARGET...]]        default BUILD_DIR: build/
# Environment: LS_BUILD_TYPE (Release), LS_SANITIZE=1 (ASan+UBSan), LS_JOBS, LS_CMAKE_ARGS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${1:-$LS_ROOT/build}"
ls_build "$build_dir" "${@:2}"
