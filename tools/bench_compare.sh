#!/usr/bin/env bash
# ls_bench against HF transformers + PEFT (eager and torch.compile'd), same step, same machine,
# one invocation; prints a table with the ratios and writes them as JSON.
#
#   tools/bench_compare.sh [--build BUILD_DIR] [--device auto|cpu|cuda] [--shape tiny|1b|7b|13b]
#       [--batch 8] [--length 64] [--task sequence|token] [--threads 2] [--warmup 3] [--steps 8]
#       [--lora-r 12] [--lora-alpha 32] [--lora-dropout 0.1] [--lora-targets q_proj,v_proj]
#       [--ls-args "..."] [--hf-args "..."] [--no-compile] [--reuse-hf DIR] [--repeat N]
#       [--label NAME] [--out-dir DIR] [--json FILE]
#
# Defaults on CPU: the tiny shape, 2 threads for both (torch.set_num_threads), and
# OMP_WAIT_POLICY=PASSIVE unless set (spinning OpenMP threads lose whole time slices to any
# other process on a 2-core machine; both sides run under the same setting).
# --ls-args / --hf-args go to one side only (e.g. --ls-args "--activation-checkpointing selective").
# --reuse-hf DIR takes hf_eager.json / hf_compiled.json from an earlier run's --out-dir instead of
# running HF again (same shape, batch and length). "hf" in the JSON is the faster of the two.
# --repeat N runs the whole set N times, alternating the sides (round K in OUT_DIR/rK/), and reports
# each side's median round: on a shared machine the neighbours' load then hits both sides alike.
# LS_BENCH_HF_TIMEOUT=SECONDS bounds each bench_hf.py process, LS_BENCH_LS_TIMEOUT each ls_bench
# (results written before then stay).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build="$LS_ROOT/build" device=auto shape=tiny batch=8 length=64 task=sequence threads="" warmup=3 steps=8
lora_r=12 lora_alpha=32 lora_dropout=0.1 lora_targets=q_proj,v_proj ls_args="" hf_args="" compile=1
reuse_hf="" label="" out_dir="" json_out="" repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --shape) shape="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --length) length="$2"; shift 2 ;;
    --task) task="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --lora-r) lora_r="$2"; shift 2 ;;
    --lora-alpha) lora_alpha="$2"; shift 2 ;;
    --lora-dropout) lora_dropout="$2"; shift 2 ;;
    --lora-targets) lora_targets="$2"; shift 2 ;;
    --ls-args) ls_args="$2"; shift 2 ;;
    --hf-args) hf_args="$2"; shift 2 ;;
    --no-compile) compile=0; shift ;;
    --reuse-hf) reuse_hf="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ls_die "bench_compare: unknown argument '$1' (--help lists them)" ;;
  esac
done

py=$(ls_resolve_python)
[ -n "$py" ] || ls_die "no Python with torch $LS_TORCH_VERSION, transformers and peft: run tools/setup.sh"
ls_bench="$build/bin/ls_bench"
[ -x "$ls_bench" ] || ls_die "$ls_bench missing: cmake --build $build --target ls_bench"
if [ "$device" = auto ]; then
  device=$("$py" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
if [ "$device" = cpu ]; then
  threads="${threads:-2}"
  export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
fi
[ -n "$out_dir" ] || out_dir=$(mktemp -d "${TMPDIR:-/tmp}/ls_bench_compare.XXXXXX")
mkdir -p "$out_dir"
label="${label:-$shape ${batch}x$length}"

common=(--shape "$shape" --batch "$batch" --length "$length" --task "$task" --device "$device"
        --warmup "$warmup" --steps "$steps" --lora-r "$lora_r" --lora-alpha "$lora_alpha"
        --lora-dropout "$lora_dropout" --lora-targets "$lora_targets")
[ -n "$threads" ] && common+=(--threads "$threads")

hf_run() {  # hf_run MODES DIR: one bench_hf.py process; a failure is recorded, not fatal
  # shellcheck disable=SC2086
  if ! timeout "${LS_BENCH_HF_TIMEOUT:-0}" "$py" "$LS_ROOT/tools/bench_hf.py" "${common[@]}" --modes "$1" $hf_args \
      --out-dir "$2" 2> >(tee "$2/hf_$1.err" >&2); then
    ls_log "[$label] bench_hf.py --modes $1 failed (log: $2/hf_$1.err)"
  fi
}
rm -f "$out_dir"/ls.json "$out_dir"/hf_eager.json "$out_dir"/hf_compiled.json
rm -rf "$out_dir"/r[0-9]*
if [ -n "$reuse_hf" ]; then
  ls_log "[$label] HF results reused from $reuse_hf"
  for f in hf_eager.json hf_compiled.json; do
    if [ -f "$reuse_hf/$f" ]; then cp "$reuse_hf/$f" "$out_dir/$f"; fi
  done
fi
for ((round = 1; round <= repeat; ++round)); do
  dir="$out_dir"
  if [ "$repeat" -gt 1 ]; then dir="$out_dir/r$round"; mkdir -p "$dir"; ls_log "[$label] round $round of $repeat"; fi
  ls_log "[$label] ls_bench (+ floor) on $device"
  # shellcheck disable=SC2086
  if ! timeout "${LS_BENCH_LS_TIMEOUT:-0}" "$ls_bench" "${common[@]}" --floor $ls_args --json "$dir/ls.json"; then
    [ -f "$dir/ls.json" ] || ls_die "[$label] ls_bench failed"
    ls_log "[$label] ls_bench failed after its timed steps (the floor?); its step results stand"
  fi
  [ -z "$reuse_hf" ] || continue
  if [ "$device" != cpu ]; then
    # One process: the model is made once; peak memory is reset between the modes.
    ls_log "[$label] HF + PEFT eager$([ $compile = 1 ] && echo ' then compiled') on $device"
    hf_run "eager$([ $compile = 1 ] && echo ,compiled)" "$dir"
  else
    # Separate processes: peak RSS cannot be reset within one.
    ls_log "[$label] HF + PEFT eager on cpu"
    hf_run eager "$dir"
    if [ $compile = 1 ]; then
      ls_log "[$label] HF + PEFT compiled on cpu (torch.compile warm-up takes a while)"
      hf_run compiled "$dir"
    fi
  fi
done

"$py" - "$out_dir" "$label" "$json_out" <<'PY'
import json, os, sys

out_dir, label, json_out = sys.argv[1:4]

import glob
dirs = [out_dir] + sorted(glob.glob(os.path.join(out_dir, "r[0-9]*")), key=lambda d: int(d.rsplit("r", 1)[1]))
rounds = {}
def pick(name):
    """The median run by tokens/s over the rounds (the lower of the middle two)."""
    runs = [json.load(open(os.path.join(d, name))) for d in dirs if os.path.exists(os.path.join(d, name))]
    rounds[name[:-5]] = [r["tokens_per_s"] for r in runs]
    return sorted(runs, key=lambda r: r["tokens_per_s"])[(len(runs) - 1) // 2] if runs else None
ls, eager, compiled = pick("ls.json"), pick("hf_eager.json"), pick("hf_compiled.json")
candidates = [r for r in (eager, compiled) if r]
hf = max(candidates, key=lambda r: r["tokens_per_s"]) if candidates else None
result = {"label": label, "device": ls["device_name"], "device_type": ls["device"], "ls": ls, "hf": hf,
          "hf_eager": eager, "hf_compiled": compiled,
          "floor": ls["floor"] if "ms_per_step" in ls.get("floor", {}) else None,
          "ratio_tokens_per_s": ls["tokens_per_s"] / hf["tokens_per_s"] if hf else None,
          "ratio_peak_mem": ls["peak_mem_bytes"] / hf["peak_mem_bytes"] if hf else None,
          "ratio_tokens_per_s_vs_eager": ls["tokens_per_s"] / eager["tokens_per_s"] if eager else None,
          "ratio_peak_mem_vs_eager": ls["peak_mem_bytes"] / eager["peak_mem_bytes"] if eager else None,
          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": list(os.getloadavg()),
          "rounds_tokens_per_s": rounds,
          # Tokens per CPU-second (process CPU time, all threads), ls over HF: the work each side
          # does per token, which the neighbours' load on a shared machine disturbs much less.
          "ratio_tokens_per_cpu_s": hf["cpu_ms_per_step"] / ls["cpu_ms_per_step"] if hf else None,
          "ratio_tokens_per_cpu_s_vs_eager": eager["cpu_ms_per_step"] / ls["cpu_ms_per_step"] if eager else None}

def fmt_mfu(r):
    return f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "-"
rows = [("ls", ls), ("hf eager", eager), ("hf compiled", compiled)]
print(f"\n{label} on {ls['device_name']} ({ls['device']}, {ls['dtype']}"
      + (f", {ls['threads']} threads" if ls["device"] == "cpu" else "") + f"), median of {ls['steps']} steps"
      + (f", median of {len(rounds['ls'])} rounds" if len(rounds["ls"]) > 1 else ""))
print(f"{'run':<13} {'tokens/s':>10} {'ms/step':>9} {'cpu ms':>8} {'peak GiB':>9} {'TFLOP/s':>8} {'MFU':>6} {'x floor':>8}  notes")
floor = result["floor"]
for name, r in rows:
    if r is None:
        print(f"{name:<13} {'(not run or failed)':>10}")
        continue
    x_floor = f"{r['ms_per_step'] / floor['ms_per_step']:.2f}" if floor else "-"
    notes = r.get("activation_checkpointing", "none")
    notes = f"checkpointing {notes}" if notes != "none" else ""
    print(f"{name:<13} {r['tokens_per_s']:>10.0f} {r['ms_per_step']:>9.1f} {r['cpu_ms_per_step']:>8.1f} {r['peak_mem_gib']:>9.2f} "
          f"{r['model_tflops_per_s']:>8.2f} {fmt_mfu(r):>6} {x_floor:>8}  {notes}")
if "error" in ls.get("floor", {}):
    print(f"floor failed: {ls['floor']['error']}")
if floor:
    print(f"{'floor':<13} {floor['tokens_per_s']:>10.0f} {floor['ms_per_step']:>9.1f} {'':>8} {'':>9} {'':>8} {'':>6} {'1.00':>8}  "
          f"GEMMs {floor['gemm_ms']:.1f} ms + attention {floor['attention_ms']:.1f} ms ({floor['method']})")
if hf:
    print(f"ls / best HF ({hf['variant']}): tokens/s x{result['ratio_tokens_per_s']:.2f}, "
          f"peak memory x{result['ratio_peak_mem']:.2f} ({ls['peak_mem_kind']}); "
          f"tokens per CPU-second x{result['ratio_tokens_per_cpu_s']:.2f}")
if json_out:
    with open(json_out + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(json_out + ".tmp", json_out)
PY
