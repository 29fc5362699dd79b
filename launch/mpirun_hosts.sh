#!/usr/bin/env bash
# Several nodes from a hostfile, GPUS_PER_NODE ranks on each: ranks fill one node before the next,
# so tensor-parallel groups (contiguous ranks, tp <= GPUS_PER_NODE) never leave a node and only
# the data-parallel gradient average crosses the network.
#   launch/mpirun_hosts.sh HOSTFILE GPUS_PER_NODE CFG.yaml [ls_train arguments...]
# HOSTFILE: one host per line (OpenMPI syntax, e.g. "node01 slots=8"); '#' starts a comment.
# Every node needs the same checkout and build path, and passwordless ssh from this one.
# Environment: LS_TRAIN, LS_CORES_PER_RANK (default: this node's cores / GPUS_PER_NODE),
#   MPIRUN_ARGS (e.g. "--mca btl_tcp_if_include eth0"); NCCL_* variables are passed on.
# Run as root (a container), it lets OpenMPI run as root; OMPI_ALLOW_RUN_AS_ROOT=0 keeps the refusal.
set -euo pipefail
usage() { echo "usage: $0 HOSTFILE GPUS_PER_NODE CFG.yaml [ls_train arguments...]" >&2; exit 2; }
[ $# -ge 3 ] || usage
hostfile=$1; per_node=$2; shift 2
[ -r "$hostfile" ] || { echo "$0: cannot read hostfile '$hostfile'" >&2; exit 2; }
[[ "$per_node" =~ ^[1-9][0-9]*$ ]] || { echo "$0: GPUS_PER_NODE must be a positive integer, got '$per_node'" >&2; usage; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ls_train=${LS_TRAIN:-$root/build/bin/ls_train}
[ -x "$ls_train" ] || { echo "$0: $ls_train not found: build it (tools/build.sh) or set LS_TRAIN" >&2; exit 2; }
nodes=$(grep -cEv '^[[:space:]]*(#|$)' "$hostfile" || true)
[ "$nodes" -ge 1 ] || { echo "$0: no hosts in '$hostfile'" >&2; exit 2; }
cores=${LS_CORES_PER_RANK:-$(( $(nproc --all) / per_node ))}
[ "$cores" -ge 1 ] || cores=1
# OpenMPI starts as root only when both variables say 1; root here is a container's user.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT-1}"
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM-1}"
fi

# The remote ranks get this shell's PATH, LD_LIBRARY_PATH and NCCL_* settings.
pass_env=(-x PATH)
[ -z "${LD_LIBRARY_PATH:-}" ] || pass_env+=(-x LD_LIBRARY_PATH)
while IFS='=' read -r name _; do pass_env+=(-x "$name"); done < <(env | grep -E '^NCCL_' || true)

# shellcheck disable=SC2086
exec mpirun -np $(( nodes * per_node )) --hostfile "$hostfile" \
  --map-by "ppr:${per_node}:node:PE=${cores}" --bind-to core \
  -x OMP_NUM_THREADS="$cores" "${pass_env[@]}" \
  ${MPIRUN_ARGS:-} "$ls_train" "$@"  # MPIRUN_ARGS: several flags, split on purpose
