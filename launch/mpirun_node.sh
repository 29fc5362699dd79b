#!/usr/bin/env bash
# One node, N GPUs: one ls_train rank per GPU (rank i on GPU i), each bound to its share of the
# cores so data loading and host work do not fight over them.
#   launch/mpirun_node.sh NGPUS CFG.yaml [--set a.b=value ...] [--resume RUN_DIR]
# Environment: LS_TRAIN (the program; default build/bin/ls_train of this checkout),
#   LS_CORES_PER_RANK (default: cores / NGPUS), MPIRUN_ARGS (extra mpirun flags).
# Run as root (a container), it lets OpenMPI run as root; OMPI_ALLOW_RUN_AS_ROOT=0 keeps the refusal.
set -euo pipefail
usage() { echo "usage: $0 NGPUS CFG.yaml [ls_train arguments...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
ngpus=$1; shift
[[ "$ngpus" =~ ^[1-9][0-9]*$ ]] || { echo "$0: NGPUS must be a positive integer, got '$ngpus'" >&2; usage; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ls_train=${LS_TRAIN:-$root/build/bin/ls_train}
[ -x "$ls_train" ] || { echo "$0: $ls_train not found: build it (tools/build.sh) or set LS_TRAIN" >&2; exit 2; }
if command -v nvidia-smi >/dev/null; then
  visible=$(nvidia-smi -L | wc -l)
  [ "$ngpus" -le "$visible" ] || { echo "$0: asked for $ngpus GPUs, this node shows $visible" >&2; exit 2; }
fi
cores=${LS_CORES_PER_RANK:-$(( $(nproc --all) / ngpus ))}
[ "$cores" -ge 1 ] || cores=1
# OpenMPI starts as root only when both variables say 1; root here is a container's user.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT-1}"
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM-1}"
fi

# ppr:N:node fills this node with N ranks in order, so tp groups (contiguous ranks) share NVLink.
# shellcheck disable=SC2086
exec mpirun -np "$ngpus" --map-by "ppr:${ngpus}:node:PE=${cores}" --bind-to core \
  -x OMP_NUM_THREADS="$cores" -x NCCL_DEBUG="${NCCL_DEBUG:-WARN}" \
  ${MPIRUN_ARGS:-} "$ls_train" "$@"  # MPIRUN_ARGS: several flags, split on purpose
