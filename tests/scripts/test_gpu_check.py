#!/usr/bin/python3
"""scripts/gpu-pack and scripts/gpu-check on a machine without a GPU.

gpu-pack: the pack holds the binaries, libbenchmark and scripts/, stays under 40 MiB, its wflops
runs, and a folder that is not a pack is refused. gpu-check --dry-run on the pack: exit 0, at most
3 files in OUTDIR, the archive holds the summary and the logs, one summary line per stage, default
budgets of at most 480 s that --budget 240 halves, --stages picks stages, and every peer call is
accepted by its peer's options. Then a simulated GPU (a fake nvidia-smi and fake binaries that
fail, hang and crash on purpose): a failed benchmark, a cut family and a crashed family are each
reported and cost only their own family, failed tests are named, and SIGTERM leaves an archive;
a test binary whose library only a Python package's nvidia/*/lib holds is made to load; and a
passing simulated GPU with fake peers and a fake torch runs the seed table, the quick suite, the
breakdown of its model steps and every peer's comparison through the real wflops.

usage: test_gpu_check.py SOURCE_DIR BUILD_DIR
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

STAGES = ["facts", "tests", "smoke", "seed", "quick", "peers", "memcheck"]
STAGE_LINE = re.compile(r"^([1-7]) (\w+): (passed|failed|cut|skipped)\b(.*)$")
PLAN_LINE = re.compile(r"^\s+([1-7]) (\w+)\s+(\d+) s\s")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1
    return ok


def run(cmd, env=None, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def plan(stdout):
    """stage name -> budget, from the plan gpu-check prints first."""
    return {m.group(2): int(m.group(3)) for m in map(PLAN_LINE.match, stdout.splitlines()) if m}


def summary(outdir):
    """stage name -> (status, rest of the line), and the number of stage lines."""
    with open(os.path.join(outdir, "summary.txt")) as f:
        lines = [STAGE_LINE.match(line) for line in f.read().splitlines()]
    stages = [m for m in lines if m]
    return {m.group(2): (m.group(3), m.group(4)) for m in stages}, len(stages)


def archive_names(outdir):
    with tarfile.open(os.path.join(outdir, "gpu-check.tar.gz")) as t:
        return [n.split("/", 1)[1] for n in t.getnames() if "/" in n]


def test_pack(source, build, tmp):
    pack = os.path.join(tmp, "pack")
    r = run([os.path.join(source, "scripts", "gpu-pack"), pack], env={"WFLOPS_BUILD_DIR": build})
    if not check(r.returncode == 0, f"gpu-pack exits 0 ({r.stderr.strip()[-300:]})"):
        return None
    for f in ["wflops", "wflops_gpu_tests", "libbenchmark.so.1debian", "PACK.txt", "scripts/gpu-check",
              "scripts/peers/matmul_peer.py", "scripts/peers/wflops_peer.py"]:
        check(os.path.isfile(os.path.join(pack, f)), f"the pack holds {f}")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(pack) for f in fs)
    check(0 < size <= 40 * 2**20, f"the pack takes {size / 2**20:.1f} MiB, at most 40")
    check(not any("__pycache__" in d for d, _, _ in os.walk(pack)), "no __pycache__ in the pack")
    with open(os.path.join(pack, "PACK.txt")) as f:
        info = f.read()
    check("libbenchmark.so.1debian: packed" in info and "NOT available" not in info,
          "PACK.txt: libbenchmark packed, nothing missing that gpu-check cannot find")
    peaks = run([os.path.join(pack, "wflops"), "peaks"])
    check(peaks.returncode == 0 and "h100-sxm" in peaks.stdout, "the packed wflops peaks runs")
    again = run([os.path.join(source, "scripts", "gpu-pack"), pack], env={"WFLOPS_BUILD_DIR": build})
    check(again.returncode == 0, "gpu-pack replaces an earlier pack")
    other = os.path.join(tmp, "not-a-pack")
    os.makedirs(other)
    with open(os.path.join(other, "keep.txt"), "w") as f:
        f.write("mine")
    refused = run([os.path.join(source, "scripts", "gpu-pack"), other], env={"WFLOPS_BUILD_DIR": build})
    check(refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
          and os.listdir(other) == ["keep.txt"], "gpu-pack refuses a folder that is not a pack, in one line")
    missing = run([os.path.join(source, "scripts", "gpu-pack"), os.path.join(tmp, "p2")],
                  env={"WFLOPS_BUILD_DIR": os.path.join(tmp, "no-build")})
    check(missing.returncode == 1 and "no wflops" in missing.stderr, "gpu-pack without a build says so")
    return pack


def test_dry_run(source, pack, tmp):
    check_script = os.path.join(pack, "scripts", "gpu-check")  # the copy inside the pack finds its build
    out = os.path.join(tmp, "dry")
    r = run([check_script, "--dry-run", out])
    check(r.returncode == 0, f"--dry-run exits 0 ({r.stderr.strip()[-300:]})")
    files = sorted(os.listdir(out))
    check(files == ["gpu-check.log", "gpu-check.tar.gz", "summary.txt"], f"OUTDIR holds 3 files: {files}")
    names = archive_names(out)
    for f in ["summary.txt", "gpu-check.log", "plan.txt", "1-facts/ldd.txt", "libs.txt",
              "lists/list-full.json", "3-smoke/groups.tsv", "6-peers/matmul.log"]:
        check(f in names, f"the archive holds {f}")
    stages, count = summary(out)
    check(count == 7 and list(stages) == STAGES, f"one summary line per stage ({count})")
    check(stages.get("facts", ("",))[0] == "passed", f"facts passed: {stages.get('facts')}")
    for s in STAGES[1:]:
        status, rest = stages.get(s, ("?", ""))
        check(status == "skipped" and re.search(r"\): (no GPU|dry run)", rest), f"{s}: skipped, no GPU: {rest[:60]}")
    check(re.search(r"would run (\d+) benchmarks in 8 wflops run", stages["smoke"][1]) is not None,
          "smoke plans one wflops run per family")
    peers = stages["peers"][1]
    check(peers.count("arguments accepted") == 6 and "refused" not in peers, "every peer accepts its arguments")
    budgets = plan(r.stdout)
    check(list(budgets) == STAGES and sum(budgets.values()) <= 480, f"default budgets add to at most 480 s: {budgets}")

    half_out = os.path.join(tmp, "half")
    half = plan(run([check_script, "--dry-run", "--budget", "240", half_out]).stdout)
    total = sum(budgets.values())
    check(half == {s: max(1, b * 240 // total) for s, b in budgets.items()},
          f"--budget 240 scales the {total} s of budgets to 240: {half}")

    picked_out = os.path.join(tmp, "picked")
    picked = run([check_script, "--dry-run", "--stages", "2,smoke", picked_out])
    stages, count = summary(picked_out)
    check(picked.returncode == 0 and list(plan(picked.stdout)) == ["tests", "smoke"], "--stages 2,smoke plans two")
    check(count == 7 and all(stages[s][1].startswith(": not selected") for s in STAGES if s not in ("tests", "smoke")),
          "the stages not picked say so")

    for args, what in [(["--stages", "9"], "an unknown stage"), (["--budget", "0"], "a budget of 0"),
                       (["--frob"], "an unknown option")]:
        bad = run([check_script, *args, os.path.join(tmp, "bad")])
        check(bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
              and not os.path.exists(os.path.join(tmp, "bad")), f"{what}: one line, exit 1, nothing written")
    full = run([check_script, "--dry-run", out])
    check(full.returncode == 1 and "not empty" in full.stderr, "a used OUTDIR is refused")


FAKE_SMI = """#!/bin/sh
case "$*" in
  -L) echo "GPU 0: NVIDIA Fake H100 (UUID: GPU-0)" ;;
  *query-gpu*) echo "NVIDIA Fake H100, 580.00, 81559 MiB, 1980 MHz, 345 MHz, 700.00 W, 30" ;;
  *) echo "fake nvidia-smi $*" ;;
esac
"""

# A wflops whose `run` writes results as the real one does (after every benchmark) and, on purpose,
# fails cuBLASLt autotune's verification, hangs in attention_bwd and crashes (SIGSEGV) in cast.
FAKE_WFLOPS = """#!/usr/bin/python3
import json, os, re, signal, sys, time
real = os.environ["REAL_WFLOPS"]
if sys.argv[1] != "run":
    os.execv(real, [real] + sys.argv[1:])
args = dict(a.split("=", 1) for a in sys.argv[2:] if a.startswith("--benchmark_filter="))
opts = sys.argv[2:]
suite, out = opts[opts.index("--suite") + 1], opts[opts.index("--out") + 1]
regex = re.compile(args["--benchmark_filter"])
specs = {s["name"]: s for s in json.loads(os.popen(f"{real} list --suite {suite} --json").read())}
names = [n for n in specs if regex.search(n + "/manual_time")]
with open(os.environ["FAKE_PIDS"], "a") as f:
    f.write(f"{os.getpid()}\\n")
with open(os.environ["FAKE_CONTEXT"]) as f:
    doc = {"context": dict(json.load(f)["context"], interrupted=True), "benchmarks": []}
calm = os.environ.get("FAKE_CALM")
def write():
    with open(out, "w") as f:
        json.dump(doc, f)
doc["argv"] = sys.argv[1:]
write()
for i, n in enumerate(names):
    if os.environ.get("FAKE_HANG") or (n.startswith("attention_bwd/") and not calm):
        time.sleep(600)
    if n.startswith("cast/") and i == 1 and not calm:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "/cublaslt_auto/" in n and not calm:
        doc["benchmarks"].append({"name": n, "run_name": n, "run_type": "iteration", "error_occurred": True,
                                  "error_message": "verification failed: simulated"})
    else:
        b = {"name": n, "run_name": n, "run_type": "iteration", "repetitions": 1, "tflops": 100.0 + i}
        if n.startswith("model_step/"):  # what wflops breakdown reads: the FLOPs and a time split
            b["flops"] = specs[n]["flops"]
            b.update({"phase_ms_" + k.split("_", 2)[2]: 1.0 for k in specs[n]["counters"]
                      if k.startswith(("phase_flops_", "phase_bytes_"))})
        doc["benchmarks"].append(b)
    write()
doc["context"]["interrupted"] = False
write()
sys.exit(1 if any(b.get("error_occurred") for b in doc["benchmarks"]) else 0)
"""

FAKE_TESTS = """#!/bin/sh
case "$*" in *gtest_list_tests*) exec "$REAL_TESTS" "$@" ;; esac
echo "[ RUN      ] Gemm.Good"
echo "[       OK ] Gemm.Good (1 ms)"
echo "[ RUN      ] Gemm.AlsoGood"
echo "[       OK ] Gemm.AlsoGood (1 ms)"
echo "[ RUN      ] Attention.Bad"
echo "[  FAILED  ] Attention.Bad (2 ms)"
echo "[  FAILED  ] 1 test, listed below:"
echo "[  FAILED  ] Attention.Bad"
exit 1
"""


# A peer that writes one result in wflops' format under its own implementation word, beside the
# benchmark gpu-check compares it with, and records the arguments it was given.
FAKE_PEER = """#!/usr/bin/python3
import json, os, sys
script = os.path.basename(sys.argv[0]).replace("_peer.py", "")
with open(os.environ["FAKE_PEER_ARGS"], "a") as f:
    f.write(script + " " + " ".join(sys.argv[1:]) + "\\n")
opts = sys.argv[1:]
out, ctx = opts[opts.index("--out") + 1], opts[opts.index("--context-from") + 1]
name = {"matmul": "matmul/torch_matmul/bf16/m:4096/n:8192/k:4096",
        "attention": "attention_fwd/torch_sdpa_flash/bf16/b:4/h:16/s:4096/d:128/causal:0",
        "mlp": "mlp_step/torch_eager_linear/fp16/d:1600/ff:6400/tok:8192",
        "moe": "moe_step/torch_grouped_mm/bf16/d:2048/E:64/G:8/tok:32768/route:expert_choice",
        "model": "model_step/hf_eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257"}[script]
with open(ctx) as f:
    context = dict(json.load(f)["context"], source="pytorch")
with open(out, "w") as f:
    json.dump({"context": context, "benchmarks": [{"name": name, "run_name": name, "run_type": "iteration",
                                                   "repetitions": 1, "tflops": 90.0}]}, f)
"""
FAKE_TORCH = """__version__ = "0.0+fake"
class version:
    cuda = "13.0"
class cuda:
    @staticmethod
    def is_available():
        return True
    @staticmethod
    def get_device_name(index):
        return "NVIDIA Fake H100"
"""


def fake_machine(build, tmp):
    """A PATH with a fake nvidia-smi, and a build folder of fake binaries around the real ones."""
    bin_dir, fake = os.path.join(tmp, "fakebin"), os.path.join(tmp, "fakebuild")
    os.makedirs(bin_dir)
    os.makedirs(fake)
    for path, text in [(os.path.join(bin_dir, "nvidia-smi"), FAKE_SMI), (os.path.join(fake, "wflops"), FAKE_WFLOPS),
                       (os.path.join(fake, "wflops_gpu_tests"), FAKE_TESTS)]:
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    pids = os.path.join(tmp, "pids.txt")
    env = {"PATH": bin_dir + os.pathsep + os.environ["PATH"], "WFLOPS_BUILD_DIR": fake, "FAKE_PIDS": pids,
           "REAL_WFLOPS": os.path.join(build, "wflops"), "REAL_TESTS": os.path.join(build, "wflops_gpu_tests"),
           "FAKE_CONTEXT": os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "h100.json")}
    return env, pids


def test_simulated_peers(source, build, tmp):
    """Seed, quick and peers on a simulated GPU that passes: the real seed-table and compare read what
    the fakes write; every peer gets its options and a context file and is compared."""
    env, _ = fake_machine(build, os.path.join(tmp, "peers-machine"))
    copy = os.path.join(tmp, "peers-copy", "scripts")  # gpu-check beside fake peers and a fake torch
    os.makedirs(os.path.join(copy, "peers"))
    shutil.copy(os.path.join(source, "scripts", "gpu-check"), copy)
    for peer in ["matmul", "attention", "mlp", "moe", "model"]:
        path = os.path.join(copy, "peers", f"{peer}_peer.py")
        with open(path, "w") as f:
            f.write(FAKE_PEER)
        os.chmod(path, 0o755)
    torch_dir = os.path.join(tmp, "peers-torch", "torch")
    os.makedirs(torch_dir)
    with open(os.path.join(torch_dir, "__init__.py"), "w") as f:
        f.write(FAKE_TORCH)
    os.makedirs(os.path.join(os.path.dirname(torch_dir), "transformers"))  # the model peer's other need
    with open(os.path.join(os.path.dirname(torch_dir), "transformers", "__init__.py"), "w") as f:
        f.write('__version__ = "0.0+fake"\n')
    peer_args = os.path.join(tmp, "peer-args.txt")
    env.update(FAKE_CALM="1", FAKE_PEER_ARGS=peer_args, PYTHONPATH=os.path.dirname(torch_dir))
    out = os.path.join(tmp, "peers-out")
    r = run([os.path.join(copy, "gpu-check"), "--stages", "seed,quick,peers", "--budget", "150", out], env=env,
            timeout=240)
    stages, _ = summary(out)
    check(r.returncode == 0, f"a passing simulated check exits 0 ({r.returncode})")
    seed, quick, peers = stages["seed"], stages["quick"], stages["peers"]
    check(seed[0] == "passed" and "4 verified, 0 failed" in seed[1] and "seed-table.txt" in seed[1],
          f"seed: its benchmarks and the seed table: {seed}")
    check(quick[0] == "passed" and re.search(r"(\d+) benchmarks: \1 verified, 0 failed", quick[1]) is not None,
          f"quick: every benchmark verified: {quick[1][:80]}")
    check(peers[0] == "passed" and peers[1].count("ok (1 ran, 0 failed), compared") == 6,
          f"peers: six calls, each compared: {peers}")
    names = archive_names(out)
    check(re.search(r"model_step breakdown \(eager bf16 [\d.]+ TFLOP/s, \d+% memory-bound; fused bf16", quick[1])
          is not None, f"quick: the breakdown of its model steps: {quick[1][-200:]}")
    for f in ["5-quick/quick.json", "5-quick/breakdown.txt", "4-seed/seed-table.txt", "6-peers/matmul-compare.txt",
              "6-peers/mlp-seed-compare.txt", "6-peers/model-compare.txt"]:
        check(f in names, f"the archive holds {f}")
    with tarfile.open(os.path.join(out, "gpu-check.tar.gz")) as t:
        top = t.getnames()[0].split("/")[0]
        quick_doc = json.load(t.extractfile(f"{top}/5-quick/quick.json"))
        compared = t.extractfile(f"{top}/6-peers/matmul-compare.txt").read().decode()
        model_compared = t.extractfile(f"{top}/6-peers/model-compare.txt").read().decode()
    quick_names = {b["name"] for b in quick_doc["benchmarks"]}
    listed = re.search(r": (\d+) benchmarks", quick[1])
    check(listed and len(quick_names) == int(listed.group(1)) and "--benchmark_repetitions=3" in quick_doc["argv"],
          f"quick: the whole suite in one wflops run with its flags ({len(quick_names)})")
    check("matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096" in compared, "the matmul peer sits beside cublaslt_auto")
    check("model_step/eager/bf16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257" in model_compared,
          f"the model peer sits beside our eager step of the quick suite: {model_compared[-300:]}")
    with open(peer_args) as f:
        calls = f.read().splitlines()
    check(len(calls) == 6 and all("--context-from" in c and "quick.json" in c or c.startswith("mlp") for c in calls)
          and any("--filter" in c for c in calls if c.startswith("matmul")), f"the peers' arguments: {calls}")


def test_simulated_gpu(source, build, tmp):
    env, pids = fake_machine(build, tmp)
    out = os.path.join(tmp, "sim")
    start = time.time()
    r = run([os.path.join(source, "scripts", "gpu-check"), "--stages", "1,2,3", "--budget", "60", out], env=env,
            timeout=120)
    took = time.time() - start
    check(r.returncode == 1, f"a failing simulated check exits 1 ({r.returncode}) in {took:.0f} s")
    check(took < 60 + 30, "it keeps to its budget (and a few seconds per cut)")
    stages, _ = summary(out)
    check(stages["tests"][0] == "failed" and "2 passed, 1 failed" in stages["tests"][1]
          and "Attention.Bad" in stages["tests"][1], f"tests: the failed test is named: {stages['tests']}")
    status, smoke = stages["smoke"]
    check(status == "failed", f"smoke failed: {smoke[:80]}")
    check("cublaslt_auto" in smoke and "verification failed: simulated" in smoke, "smoke names the failed benchmark")
    check("attention_bwd cut after 0 of 3" in smoke, "smoke: the hanging family is cut")
    check("cast died (signal 11) after 1 of 2" in smoke, "smoke: the crashed family is reported")
    check(re.search(r"best TFLOP/s .*bf16 1\d\d\.\d", smoke) is not None, "smoke: the best TFLOP/s per dtype")
    names = archive_names(out)
    for f in ["3-smoke/matmul.json", "3-smoke/attention_fwd.json", "3-smoke/moe_step.log", "2-tests/gpu-tests.log"]:
        check(f in names, f"the archive holds {f}")
    check(sorted(os.listdir(out)) == ["gpu-check.log", "gpu-check.tar.gz", "summary.txt"], "still 3 files")

    # Stopped from outside while a family hangs: the archive and the summary say what finished.
    out2 = os.path.join(tmp, "stopped")
    open(pids, "w").close()
    p = subprocess.Popen([os.path.join(source, "scripts", "gpu-check"), "--stages", "1,3", out2],
                         env={**os.environ, **env, "FAKE_HANG": "1"}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.getsize(pids):
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=30)
    check(rc == 143, f"SIGTERM: exit 143 ({rc})")
    stages, _ = summary(out2)
    check(stages["smoke"][0] == "cut" and "stopped by SIGTERM" in stages["smoke"][1],
          f"the stopped stage: {stages['smoke']}")
    check("1-facts/ldd.txt" in archive_names(out2), "the archive holds the finished stage")
    with open(pids) as f:
        running = [int(x) for x in f.read().split()]
    alive = []
    for pid in running:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    check(running and not alive, f"the running wflops was stopped too ({running}, alive {alive})")


# A test binary that needs a library only a Python package folder holds (nvidia/*/lib, where PyTorch's
# CUDA wheels keep cuBLAS and cuDNN): gpu-check must find it there and put it on LD_LIBRARY_PATH.
PROBE_LIB = "int wflops_probe(void) { return 2; }\n"
PROBE_TESTS = """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int wflops_probe(void);
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (strstr(argv[i], "gtest_list_tests")) { execv(getenv("REAL_TESTS"), argv); return 127; }
  printf("[ RUN      ] Probe.Loads\\n[       OK ] Probe.Loads (0 ms)\\n");
  return wflops_probe() - 2;
}
"""


def test_library_search(source, build, tmp):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("skip library search: no C compiler")
        return
    env, _ = fake_machine(build, os.path.join(tmp, "lib-search"))
    user_base = os.path.join(tmp, "pyuser")
    env["PYTHONUSERBASE"] = user_base
    site_dir = run(["python3", "-c", "import site; print(site.getusersitepackages())"], env=env).stdout.strip()
    lib_dir = os.path.join(site_dir, "nvidia", "probe", "lib")
    os.makedirs(lib_dir)
    src = os.path.join(tmp, "probe")
    os.makedirs(src)
    for name, text in [("probe.c", PROBE_LIB), ("tests.c", PROBE_TESTS)]:
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    made = [run([cc, "-shared", "-fPIC", "-Wl,-soname,libwflopsprobe.so.1", "-o",
                 os.path.join(lib_dir, "libwflopsprobe.so.1"), os.path.join(src, "probe.c")]),
            run([cc, "-o", os.path.join(env["WFLOPS_BUILD_DIR"], "wflops_gpu_tests"), os.path.join(src, "tests.c"),
                 os.path.join(lib_dir, "libwflopsprobe.so.1")])]
    if not check(all(m.returncode == 0 for m in made), "the probe binary builds"):
        print(*(m.stderr for m in made))
        return
    check("not found" in run(["ldd", os.path.join(env["WFLOPS_BUILD_DIR"], "wflops_gpu_tests")]).stdout,
          "the probe's library is not found without help")
    out = os.path.join(tmp, "lib-search-out")
    r = run([os.path.join(source, "scripts", "gpu-check"), "--stages", "1,2", "--budget", "60", out], env=env,
            timeout=120)
    stages, _ = summary(out)
    facts, tests = stages["facts"], stages["tests"]
    check(facts[0] == "passed" and f"LD_LIBRARY_PATH += {lib_dir}" in facts[1],
          f"the library is found in the Python package's folder: {facts}")
    check(r.returncode == 0 and tests[0] == "passed" and "1 passed, 0 failed" in tests[1],
          f"the tests run with it: {tests}")


def main():
    source, build = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        pack = test_pack(source, build, tmp)
        if pack:
            test_dry_run(source, pack, tmp)
        test_simulated_gpu(source, build, tmp)
        test_library_search(source, build, tmp)
        test_simulated_peers(source, build, tmp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
