#!/usr/bin/env bash
# Sets up, builds and runs the main job on the embedded default (configs/quickstart.yaml):
# a tiny LLaMA-architecture model, its tokenizer and small datasets, all local, CPU only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$LS_ROOT/tools/setup.sh"
build_dir="${LS_BUILD_DIR:-$LS_ROOT/build}"
"$LS_ROOT/tools/build.sh" "$build_dir"
if [ ! -x "$build_dir/bin/ls_train" ]; then
  ls_log "build finished; the trainer (ls_train) is not part of ls-train yet, so there is nothing to train."
  ls_log "What is there: $(ls "$build_dir/bin" | tr '\n' ' ')"
  exit 3
fi
exec "$build_dir/bin/ls_train" "$LS_ROOT/configs/quickstart.yaml" "$@"
