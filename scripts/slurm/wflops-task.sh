#!/bin/bash
# One srun task of wflops-cluster.sbatch: runs wflops on the task's own GPU.
#   wflops-task.sh WFLOPS_BIN SUITE OUT_DIR [extra `wflops run` arguments]
# CUDA_VISIBLE_DEVICES is set to the task's local rank (SLURM_LOCALID), so the task sees exactly
# one GPU (device 0 inside the task) and the file name records which physical GPU it was.
# Binding by hand rather than with --gpu-bind keeps this working where Slurm does not manage
# GPUs as generic resources.
#
# Beside the result file <host>-gpu<i>.json and its log, the task writes <host>-gpu<i>.status.json:
# host, GPU index, exit code, the one-line reason of a failure, and whether it was interrupted.
# scripts/slurm/cluster-summary reads those.
set -uo pipefail
bin="$1"; suite="$2"; out="$3"; shift 3
gpu="${SLURM_LOCALID:?run this through srun}"
host="${SLURMD_NODENAME:-$(hostname -s)}"
export CUDA_VISIBLE_DEVICES="$gpu"
stem="$out/${host}-gpu${gpu}"
file="$stem.json"
log="$stem.log"

# A scheduler's SIGTERM (time limit, scancel) goes to wflops, which keeps every finished benchmark
# in its file (interrupted: true); the status is still written once it has gone.
child=""
interrupted=false
on_term() { interrupted=true; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }
trap on_term TERM INT
# A failed benchmark (exit 1) still leaves a valid file; no usable GPU exits 2 and writes nothing.
"$bin" run --suite "$suite" --out "$file" "$@" >"$log" 2>&1 &
child=$!
wait "$child"
code=$?
# wait returns early when a trapped signal arrives: wait again for wflops itself to finish.
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
if [ "$code" -ge 128 ]; then interrupted=true; fi

# The reason: wflops' own one-line error ("wflops: no usable GPU: ...", "wflops: error: ..."), else
# the log's last line.
reason=""
if [ "$code" != 0 ]; then
  reason=$(grep -E '^wflops: (error|internal error|no usable GPU|interrupted|[0-9]+ benchmark)' "$log" | tail -n 1)
  [ -n "$reason" ] || reason=$(grep -E '^wflops: ' "$log" | tail -n 1)
  if [ -z "$reason" ] && [ "$code" -gt 128 ]; then
    reason="killed by signal $((code - 128)) (SIG$(kill -l $((code - 128)) 2>/dev/null || echo '?'))"
  fi
  [ -n "$reason" ] || reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
  [ -n "$reason" ] || reason="exited $code with no output"
fi
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"; }
result=null
[ -f "$file" ] && result=$(json_string "$(basename "$file")")
{
  printf '{"host": %s, "gpu_index": %s, "exit_code": %s, ' "$(json_string "$host")" "$gpu" "$code"
  printf '"reason": %s, "result_file": %s, "log": %s, "interrupted": %s, "job_id": %s}\n' \
    "$(json_string "$reason")" "$result" "$(json_string "$(basename "$log")")" "$interrupted" \
    "$(json_string "${SLURM_JOB_ID:-}")"
} >"$stem.status.json"
echo "wflops-cluster: $host GPU $gpu exited $code${reason:+: $reason}"
exit "$code"
