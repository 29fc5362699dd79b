#!/usr/bin/env bash
# The prepared GPU benchmark of issue #8: ls_bench against HF transformers + PEFT (eager and
# compiled) on one H100/H200, the issue's table in one go (about 6-9 minutes):
#   (a) LLaMA-2-7B shape, LoRA r=12 alpha=32 on q,v, batch 8 x 64 (the paper recipe)
#   (b) the same at 8 x 512
#   (c) 8 x 512 memory mode: ls with selective, then full activation checkpointing, against HF
#       eager without checkpointing (HF results of (b) reused)
#   (d) TinyLlama-1.1B shape (GQA 32/4), 8 x 512 (HF eager; GPU_BENCH_COMPILE_1B=1 adds compiled)
# 3 warm-up + 8 timed steps each (GPU_BENCH_WARMUP, GPU_BENCH_STEPS). Writes a.json, b.json,
# c_selective.json, c_full.json, d.json (bench_compare's JSON), summary.txt and log.txt to
# OUT_DIR, and prints the table last, with the device name.
#
#   tools/gpu_bench.sh [OUT_DIR]      on the GPU machine; OUT_DIR defaults to $OUT, else runs/gpu_bench
#   tools/gpu_bench.sh --pack         here, before: build ls_bench and pack it into .gpu_bundle/
#   GPU_BENCH_DRY=1 tools/gpu_bench.sh DIR   the same script logic on the CPU (tiny shape, short
#                                     sequences, 1 step, no compile): a check of the script itself
#
# ls_bench: a carried .gpu_bundle/ (from --pack: the program plus the system libraries it needs
# beyond torch, CUDA and glibc) is used when it runs there, which saves the build; otherwise it
# is built there (Release, tests off, only the ls_bench target, every core) into build-gpu/.
# Python: the machine's python3 when it has torch 2.11 + transformers + peft (tools/common.sh),
# so tools/setup.sh is not needed there. The device session then runs:
#   run(command="tools/gpu_bench.sh", carry=[".gpu_bundle"], timeout_s=600)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bundle="$LS_ROOT/.gpu_bundle"

if [ "${1:-}" = "--pack" ]; then
  set -e
  build="${2:-$LS_ROOT/build}"
  [ -f "$build/CMakeCache.txt" ] || LS_JOBS="${LS_JOBS:-1}" "$LS_ROOT/tools/build.sh" "$build"
  cmake --build "$build" -j "${LS_JOBS:-1}" --target ls_bench
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  strip -o "$bundle/bin/ls_bench" "$build/bin/ls_bench"
  # Libraries outside torch, CUDA and the C/C++ runtime (OpenMPI and what it pulls in).
  ldd "$build/bin/ls_bench" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
    case "$lib" in
      */torch/lib/*|*/nvidia/*|/usr/local/cuda*) ;;
      */libc.so*|*/libm.so*|*/libpthread.so*|*/libdl.so*|*/librt.so*|*/libutil.so*|*/ld-linux*|*/libstdc++.so*|*/libgcc_s.so*) ;;
      *) cp -L "$lib" "$bundle/lib/" ;;
    esac
  done
  # Ignored, so it travels only when carried and is never committed.
  exclude=$(cd "$LS_ROOT" && realpath -m "$(git rev-parse --git-path info/exclude)")
  grep -qx '/.gpu_bundle/' "$exclude" 2>/dev/null || { mkdir -p "$(dirname "$exclude")"; echo '/.gpu_bundle/' >>"$exclude"; }
  ls_log "packed $(du -sh "$bundle" | cut -f1) into $bundle: carry .gpu_bundle to the GPU machine"
  exit 0
fi

out="${1:-${OUT:-$LS_ROOT/runs/gpu_bench}}"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_bench.XXXXXX")
exec > >(tee "$out/log.txt") 2>&1
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
py=$(ls_resolve_python)
[ -n "$py" ] || ls_die "no python with torch $LS_TORCH_VERSION + transformers + peft here"
export LS_PYTHON="$py"
ls_log "python: $py ($("$py" -c 'import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)'))"
torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
site=$(dirname "$(dirname "$torch_lib")")
extra_libs="$torch_lib"
for d in "$site"/nvidia/*/lib "$site"/nvidia/cu13/lib /usr/local/cuda/lib64 /usr/local/cuda/lib; do
  [ -d "$d" ] && extra_libs="$extra_libs:$d"
done

warmup="${GPU_BENCH_WARMUP:-3}" steps="${GPU_BENCH_STEPS:-8}" device=cuda
big=7b small=1b short=64 long=512 compile_args=()
if [ "${GPU_BENCH_DRY:-0}" = 1 ]; then
  device=cpu big=tiny small=tiny short=8 long=32 warmup=0 steps=1 compile_args=(--no-compile)
fi

# ls_bench: the carried bundle if it runs here, else a build.
build=""
if [ -x "$bundle/bin/ls_bench" ]; then
  mkdir -p "$work/build/bin"
  cat >"$work/build/bin/ls_bench" <<EOF
#!/usr/bin/env bash
LD_LIBRARY_PATH="$bundle/lib:$extra_libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$bundle/bin/ls_bench" "\$@"
EOF
  chmod +x "$work/build/bin/ls_bench"
  if "$work/build/bin/ls_bench" --help >/dev/null 2>"$work/bundle.err"; then
    build="$work/build"
    ls_log "using the carried ls_bench ($bundle)"
  else
    ls_log "the carried ls_bench does not run here: $(head -c 300 "$work/bundle.err"); building"
  fi
fi
if [ -z "$build" ]; then
  build="$LS_ROOT/build-gpu"
  export CCACHE_BASEDIR="$LS_ROOT" CCACHE_NOHASHDIR=1
  torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  ls_log "configuring $build (tests off)"
  if ! cmake -S "$LS_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$torch_prefix" -DLS_PYTHON="$py" -DLS_BUILD_TESTS=OFF \
      -DCMAKE_CUDA_ARCHITECTURES=90 >"$work/configure.log" 2>&1; then
    tail -20 "$work/configure.log"
    ls_die "configure failed (system libraries missing?): make a bundle here with tools/gpu_bench.sh --pack and carry .gpu_bundle"
  fi
  cmake --build "$build" -j "$(nproc)" --target ls_bench || ls_die "building ls_bench failed"
  ls_log "built ls_bench in $(elapsed) s"
fi
"$build/bin/ls_bench" --shape tiny --batch 1 --length 8 --warmup 0 --steps 1 --device "$device" -q \
  || ls_die "ls_bench does not run on this GPU"

# The whole script has to end inside one 600 s device call: each row's HF process gets at most
# its share, and a row is skipped when too little of the budget is left (the table says so).
budget="${GPU_BENCH_BUDGET:-570}"
compare() {  # compare NAME LABEL HF_SECONDS ARGS...: one bench_compare row, its JSON kept in OUT_DIR
  local name=$1 label=$2 hf_seconds=$3 left
  shift 3
  left=$(( budget - $(elapsed) ))
  if [ "$left" -lt 45 ]; then
    ls_log "=== $label skipped: $left s left of the $budget s budget"
    return
  fi
  [ "$hf_seconds" -lt $(( left - 30 )) ] || hf_seconds=$(( left - 30 ))
  ls_log "=== $label ($(elapsed) s in; HF gets up to $hf_seconds s)"
  LS_BENCH_HF_TIMEOUT="$hf_seconds" LS_BENCH_LS_TIMEOUT=120 "$LS_ROOT/tools/bench_compare.sh" --build "$build" \
    --device "$device" --warmup "$warmup" --steps "$steps" --lora-r 12 --lora-alpha 32 --lora-dropout 0.1 \
    --lora-targets q_proj,v_proj --label "$label" --out-dir "$work/$name" --json "$out/$name.json" "$@" \
    || ls_log "$label: bench_compare failed"
}
compare a "(a) 7B 8x64 paper recipe" 200 --shape $big --batch 8 --length $short "${compile_args[@]}"
compare b "(b) 7B 8x512" 200 --shape $big --batch 8 --length $long "${compile_args[@]}"
compare c_selective "(c) 7B 8x512 memory, selective" 0 --shape $big --batch 8 --length $long \
  --ls-args "--activation-checkpointing selective" --reuse-hf "$work/b"
compare c_full "(c) 7B 8x512 memory, full" 0 --shape $big --batch 8 --length $long \
  --ls-args "--activation-checkpointing full" --reuse-hf "$work/b"
[ "${GPU_BENCH_COMPILE_1B:-0}" = 1 ] || compile_args=(--no-compile)
compare d "(d) 1.1B 8x512" 90 --shape $small --batch 8 --length $long "${compile_args[@]}"

"$py" - "$out" <<'PY' | tee "$out/summary.txt"
import json, os, sys
out = sys.argv[1]
# The issue's targets (H200): ratio against the better HF, peak memory (GiB, max allocated).
targets = {"a": "tokens x>=2.0 vs best HF, peak <= 14 GiB", "b": "tokens x>=1.1 vs best HF",
           "c_selective": "peak <= 20 GiB at >= HF eager tokens/s", "c_full": "peak <= 20 GiB at >= HF eager tokens/s",
           "d": "(no target)"}
def met(name, r):
    ls = r["ls"]
    gib = ls["peak_mem_bytes"] / 2**30
    if name == "a": return r["ratio_tokens_per_s"] >= 2.0 and gib <= 14
    if name == "b": return r["ratio_tokens_per_s"] >= 1.1
    if name.startswith("c"): return gib <= 20 and (r["ratio_tokens_per_s_vs_eager"] or 0) >= 1.0
    return None
device = None
print(f"\n{'row':<36} {'ls tok/s':>9} {'HF eager':>9} {'HF comp.':>9} {'ls/HF':>6} {'ls GiB':>7} {'HF GiB':>7} {'floor tok/s':>11} {'ls/floor':>8}  target")
for name in targets:
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        print(f"{name:<36} (no result)")
        continue
    r = json.load(open(path))
    ls, e, c, hf, fl = r["ls"], r["hf_eager"], r["hf_compiled"], r["hf"], r["floor"]
    device = r["device"]
    tok = lambda x: f"{x['tokens_per_s']:.0f}" if x else "-"
    ok = met(name, r) if hf else None
    ratio = r["ratio_tokens_per_s_vs_eager"] if name.startswith("c") else r["ratio_tokens_per_s"]
    print(f"{r['label']:<36} {tok(ls):>9} {tok(e):>9} {tok(c):>9} "
          f"{(ratio or 0):>6.2f} {ls['peak_mem_gib']:>7.2f} {(hf['peak_mem_gib'] if hf else 0):>7.2f} "
          f"{(fl['tokens_per_s'] if fl else 0):>11.0f} {(fl['tokens_per_s'] / ls['tokens_per_s'] if fl else 0):>8.2f}  "
          f"{targets[name]}: {'met' if ok else ('missed' if ok is False else '-')}")
print(f"device: {device}; ls/HF = ls tokens/s over the faster HF (eager or compiled), for (c) over HF eager; "
      f"GiB = CUDA max allocated over the run (peak RSS on a CPU)")
PY
ls_log "done in $(elapsed) s; results in $out"
