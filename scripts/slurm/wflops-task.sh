#!/bin/bash
# One srun task of wflops-cluster.sbatch: runs wflops on the task's own GPU.
#   wflops-task.sh WFLOPS_BIN SUITE OUT_DIR [extra `wflops run` arguments]
# CUDA_VISIBLE_DEVICES is set to the task's local rank (SLURM_LOCALID), so the task sees exactly
# one GPU (device 0 inside the task) and the file name records which physical GPU it was.
# Binding by hand rather than with --gpu-bind keeps this working where Slurm does not manage
# GPUs as generic resources.
set -uo pipefail
bin="$1"; suite="$2"; out="$3"; shift 3
gpu="${SLURM_LOCALID:?run this through srun}"
host="${SLURMD_NODENAME:-$(hostname -s)}"
export CUDA_VISIBLE_DEVICES="$gpu"
file="$out/${host}-gpu${gpu}.json"
# A failed benchmark (exit 1) still leaves a valid file; no usable GPU exits 2.
"$bin" run --suite "$suite" --out "$file" "$@" > "$out/${host}-gpu${gpu}.log" 2>&1
code=$?
echo "wflops-cluster: $host GPU $gpu exited $code -> $file"
exit "$code"
