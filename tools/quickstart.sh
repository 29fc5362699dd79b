#!/usr/bin/env bash
# Sets up, builds ls_train (nothing else) and runs the embedded default: a tiny LLaMA-architecture
# model and tokenizer made locally (seeded, no downloads), a sentiment task (LS-LLaMA) and an NER
# task whose tags depend on the words to their right, trained causal (LS-LLaMA) and bidirectional
# (LS-unLLaMA), then a multi-label and a regression task on the same model, and the sentiment task
# once more on a LLaMA-3-style model with a byte-level BPE tokenizer.json.
# CPU only: about two minutes on 2 cores once built (the first build's time: README.md).
# Results: runs/quickstart-*/ and runs/quickstart-summary.json.
# Usage: tools/quickstart.sh [--set key=value ...]   (extra arguments go to every ls_train run)
set -euo pipefail
case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 0
    ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$LS_ROOT/tools/setup.sh"
build_dir="${LS_BUILD_DIR:-$LS_ROOT/build}"
# Only the program it runs: the tests, ls_predict, ls_export and ls_serve come with tools/build.sh.
ls_build "$build_dir" ls_train
py=$(ls_resolve_python)
bin="$build_dir/bin"
runs="$LS_ROOT/runs"

ls_log "making the quickstart model, tokenizer and data in $LS_ROOT/build/quickstart"
"$py" "$LS_ROOT/tools/make_quickstart_assets.py" "$LS_ROOT/build/quickstart"

ls_log "1/6 sentiment, LS-LLaMA (causal)"
"$bin/ls_train" "$LS_ROOT/configs/quickstart_sentiment.yaml" "$@"
ls_log "2/6 NER, LS-LLaMA (causal attention)"
"$bin/ls_train" "$LS_ROOT/configs/quickstart.yaml" --set model.attention=causal \
  --set output.dir="$runs/quickstart-ner-causal" "$@"
ls_log "3/6 NER, LS-unLLaMA (bidirectional attention)"
"$bin/ls_train" "$LS_ROOT/configs/quickstart.yaml" --set output.dir="$runs/quickstart-ner-bidirectional" "$@"
ls_log "4/6 aspects, multi-label (one sigmoid per label)"
"$bin/ls_train" "$LS_ROOT/configs/quickstart_multilabel.yaml" "$@"
ls_log "5/6 rating, regression"
"$bin/ls_train" "$LS_ROOT/configs/quickstart_regression.yaml" "$@"
ls_log "6/6 sentiment, LS-LLaMA on a LLaMA-3-style model (byte-level BPE tokenizer.json)"
"$bin/ls_train" "$LS_ROOT/configs/quickstart_llama3.yaml" "$@"

"$py" "$LS_ROOT/tools/quickstart_summary.py" "$runs/quickstart-summary.json" \
  "sentiment LS-LLaMA=$runs/quickstart-sentiment" \
  "NER LS-LLaMA=$runs/quickstart-ner-causal" \
  "NER LS-unLLaMA=$runs/quickstart-ner-bidirectional" \
  "aspects multi-label=$runs/quickstart-multilabel" \
  "rating regression=$runs/quickstart-regression" \
  "sentiment LLaMA-3-style=$runs/quickstart-sentiment-llama3"
