#!/bin/bash
# The cluster script under a real Slurm: starts munged, slurmctld and slurmd (Debian's munge and
# slurm-wlm) on this machine with a generated one-node slurm.conf, submits
# scripts/slurm/wflops-cluster.sbatch with the real wflops binary, waits for the job, checks its
# output folder, and stops the daemons. Without a GPU every task exits 2: the job must still finish
# and say so per task; with fewer than two result files no comparison is attempted.
#   test_slurm_cluster.sh SOURCE_DIR WFLOPS_BIN
# Exit 0 pass, 1 fail, 77 skipped (the reason is printed: not root, or Slurm/munge not installed).
set -uo pipefail
src="$(readlink -f "$1")"; bin="$(readlink -f "$2")"
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; dump_logs; exit 1; }
for cmd in munged slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$cmd" >/dev/null || skip "$cmd is not installed (apt-get install munge slurmctld slurmd slurm-client)"
done
[ "$(id -u)" = 0 ] || skip "slurmd must run as root to start jobs as the submitting user"

# The daemons' files all live in one temporary folder, on the shared file system of a one-node
# cluster: the submit directory is a copy of the source tree's scripts and the built binary.
dir=$(mktemp -d /tmp/wflops-slurm-XXXXXX)
mkdir -p "$dir"/{munge,state,spool,submit/scripts,submit/build}
chmod 700 "$dir/munge"
cp -r "$src/scripts/slurm" "$dir/submit/scripts/"
cp "$bin" "$dir/submit/build/wflops"
cp "$(dirname "$bin")"/libbenchmark.so* "$dir/submit/build/" 2>/dev/null || true
dump_logs() {
  for f in "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/munge/munged.log "$dir"/submit/wflops-*.out; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
  done
}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT

# munge: a fresh key, its own socket; --force because /tmp is not the packaged /etc/munge.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
socket="$dir/munge/munge.socket"
munged --force --foreground --key-file="$dir/munge/munge.key" --socket="$socket" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" \
  2>>"$dir/munge/munged.log" &
pids+=($!)

# Ports of our own, so a Slurm that is already running here is left alone.
base=$((20000 + RANDOM % 20000))
# Eight CPUs whatever the machine has (config_overrides lets slurmd accept that), so a job can
# start one task per pretended GPU on a 2-core CI machine.
cpus=8
export SLURM_CONF="$dir/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=wflopstest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmdParameters=config_overrides
NodeName=wflops-node1 NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=wflops-node1 Default=YES MaxTime=10 State=UP
CONF
for i in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || fail "munged did not start"
slurmctld -D -i -f "$SLURM_CONF" 2>>"$dir/slurmctld.log" &
pids+=($!)
slurmd -D -N wflops-node1 -f "$SLURM_CONF" 2>>"$dir/slurmd.log" &
pids+=($!)
for i in $(seq 60); do
  state=$(sinfo -h -n wflops-node1 -o %t 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "the node did not come up idle (state '$state')"
echo "slurm is up: node wflops-node1 idle, $cpus CPUs"

# The state of job $1 once it has ended, or its last state after $2 polls half a second apart
# (default 120).
wait_job() {
  local st=""
  for _ in $(seq "${2:-120}"); do
    st=$(scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
    sleep 0.5
  done
  echo "$st"
}

# The job, as a user submits it: two GPUs per node (this machine has none; Slurm does not manage
# GPUs here, so WFLOPS_GPUS_PER_NODE says how many tasks to start), extra run arguments passed on.
cd "$dir/submit"
out="$dir/submit/results/cluster-test"
job=$(WFLOPS_GPUS_PER_NODE=2 WFLOPS_RUN_ARGS="--benchmark_repetitions=1" WFLOPS_OUT="$out" \
  timeout 10 sbatch --parsable --nodes=1 --time=5 scripts/slurm/wflops-cluster.sbatch) || fail "sbatch refused the job"
echo "submitted job $job"
state=$(wait_job "$job" 240)
echo "job $job: $state"
case "$state" in COMPLETED|FAILED) ;; *) fail "the job did not finish (state '$state')" ;; esac
joblog="$dir/submit/wflops-$job.out"
[ -f "$joblog" ] && cat "$joblog"

failures=0
check() { if eval "$1"; then echo "ok   $2"; else echo "FAIL $2"; failures=$((failures + 1)); fi; }
summary="$out/cluster-summary.json"
check '[ -f "$summary" ]' "the job wrote cluster-summary.json"
check '[ "$state" = FAILED ]' "a job whose every task failed ends FAILED, not COMPLETED"
py() { python3 -c "import json,sys; s=json.load(open('$summary')); $1"; }
check 'py "assert len(s[\"tasks\"]) == 2 and s[\"expected_tasks\"] == 2"' "two tasks, two expected"
check 'py "assert sorted(t[\"gpu_index\"] for t in s[\"tasks\"]) == [0, 1]"' "one task per GPU index"
check 'py "assert all(t[\"host\"] == \"wflops-node1\" for t in s[\"tasks\"])"' "each task names its host"
check 'py "assert all(t[\"exit_code\"] == 2 and t[\"outcome\"] == \"failed\" for t in s[\"tasks\"])"' \
  "each task exited 2 (no GPU) and is counted failed"
check 'py "assert all(t[\"reason\"].startswith(\"wflops: no usable GPU\") for t in s[\"tasks\"])"' \
  "each task carries wflops' one-line reason"
check 'py "assert s[\"succeeded\"] == 0 and s[\"failed\"] == 2 and s[\"result_files\"] == []"' "counts and no result files"
check 'py "assert not s[\"compare\"][\"ran\"] and \"needs two\" in s[\"compare\"][\"why_not\"]"' \
  "no comparison on fewer than two result files"
check '[ ! -e "$out/compare.txt" ]' "compare was not run"
check 'grep -q "0 of 2 task(s) succeeded" "$joblog"' "the job's output has the short table"
check 'grep -q "wflops-node1 *0 *2 *failed" "$joblog"' "the table has a row per task"

# A program the job cannot see: one clear error before any task starts.
job2=$(WFLOPS_GPUS_PER_NODE=1 WFLOPS_BIN="$dir/not-there/wflops" timeout 10 sbatch --parsable --nodes=1 --time=2 \
  scripts/slurm/wflops-cluster.sbatch) || fail "sbatch refused the second job"
state2=$(wait_job "$job2")
check '[ "$state2" = FAILED ] && grep -q "wflops-cluster: error: .*not-there/wflops is not an executable" \
  "$dir/submit/wflops-$job2.out"' "a program the job cannot see is one clear error"

# The rest of the path with results: a stand-in for `wflops run` (there is no GPU to measure on)
# that records its arguments and writes one of the cluster fixtures as its result; GPU 3's task
# dies by SIGKILL after writing a partial file. `compare` is the real program.
cat >"$dir/submit/build/fake-wflops" <<FAKE
#!/bin/bash
if [ "\$1" = compare ]; then exec "$dir/submit/build/wflops" "\$@"; fi
out=""; prev=""
for a in "\$@"; do [ "\$prev" = --out ] && out="\$a"; prev="\$a"; done
printf '%s\n' "\$@" >"\$out.args"
fixture="$src/tests/data/cluster/node\$((SLURM_LOCALID + 1))-gpu0.json"
if [ "\$SLURM_LOCALID" = 3 ]; then
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['context']['interrupted']=True; \
d['benchmarks']=d['benchmarks'][:1]; json.dump(d, open(sys.argv[2], 'w'))" "\$fixture" "\$out"
  kill -KILL \$\$
fi
cp "\$fixture" "\$out"
FAKE
chmod +x "$dir/submit/build/fake-wflops"
out3="$dir/submit/results/cluster-fake"
job3=$(WFLOPS_GPUS_PER_NODE=4 WFLOPS_BIN="$dir/submit/build/fake-wflops" WFLOPS_OUT="$out3" \
  WFLOPS_RUN_ARGS="--benchmark_repetitions=1 --benchmark_filter=bf16" \
  timeout 10 sbatch --parsable --nodes=1 --time=2 scripts/slurm/wflops-cluster.sbatch) || fail "sbatch refused job 3"
state3=$(wait_job "$job3")
cat "$dir/submit/wflops-$job3.out"
summary="$out3/cluster-summary.json"
check '[ -f "$summary" ]' "job 3 wrote cluster-summary.json"
check 'grep -qx -- "--benchmark_filter=bf16" "$out3/wflops-node1-gpu0.json.args" && \
  grep -qx -- "--benchmark_repetitions=1" "$out3/wflops-node1-gpu0.json.args"' "WFLOPS_RUN_ARGS reach wflops run unchanged"
check 'py "assert [t[\"outcome\"] for t in s[\"tasks\"]] == [\"ok\", \"ok\", \"ok\", \"interrupted\"]"' \
  "three tasks ok, the killed one interrupted"
check 'py "assert s[\"tasks\"][3][\"reason\"] == \"killed by signal 9 (SIGKILL)\""' "the killed task says how it died"
check 'py "assert s[\"tasks\"][3][\"result_file\"] == \"wflops-node1-gpu3.json\" and s[\"tasks\"][3][\"benchmarks\"] == 1"' \
  "the killed task's partial result file is named, with what it finished"
check 'py "assert s[\"compare\"][\"ran\"] and s[\"compare\"][\"files\"] == 4"' "four result files compared"
check 'py "assert [p.rsplit(\"/\", 1)[1] for p in s[\"compare\"][\"outliers\"]] == [\"wflops-node1-gpu2.json\"]"' \
  "the slow GPU (fixture node3) is the outlier"
check '[ -s "$out3/compare.txt" ] && [ -s "$out3/compare.json" ]' "compare.txt and compare.json written"
check '[ "$state3" = FAILED ]' "a job with an interrupted task ends FAILED"

if [ "$failures" != 0 ]; then dump_logs; echo "$failures check(s) failed"; exit 1; fi
echo "all Slurm checks passed"
