#!/usr/bin/python3
"""Smoke test of the PyTorch peers (scripts/peers) on the host: their logic without a GPU.

usage: test_peers_cpu.py SOURCE_DIR [WFLOPS_BINARY]

1. Without PyTorch: the writer and timer of wflops_peer.py (input rotation count, a host-timed
   repetition's calls, the stream hold's logic on a stand-in CUDA clock, an exception becoming
   that benchmark's error, the cv aggregate's unit, file mode 0644); with WFLOPS_BINARY, the
   FLOPs and bytes the MLP, MoE and attention peers compute against `wflops list --json`; the model
   peer's FLOPs against the hand-checked figures of tests/cpu/test_flops_model.cpp and against
   `wflops list`'s model_step rows, whose names its configurations must be.
2. With PyTorch (the Python in $WFLOPS_PEER_PYTHON, else this one): each peer with --device cpu
   (tiny shapes, host timer): it exits 0, its file validates against docs/result.schema.json
   (where jsonschema imports), every benchmark that ran passed its check and carries its calls,
   the ones that cannot run on the host are error entries (the cuDNN attention back end, an
   impossible MoE configuration), `wflops compare` reads the file (when WFLOPS_BINARY is given);
   bad arguments exit 2 before any file exists; the MoE peer's device-side expert counts match
   torch.bincount and its chunked combine passes the fp64 check. The model peer (Hugging Face
   transformers) runs only where transformers imports too, else that part says it is skipped and why:
   its models give wflops' own fp64 reference loss and gradients (src/reference/model_reference.hpp, built here
   with the host's C++ compiler), its check's ignored labels confine the loss and gradients to the
   checked tokens, a failed check is an error entry, and its tiny rows run, checked, in bf16 and
   fp16, eager, SDPA and compiled.
Exits 77 (CTest's SKIP_RETURN_CODE) after part 1 when torch does not import, saying why.
"""
import contextlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import types

SKIP = 77
failures = 0


def fail(what):
    global failures
    failures += 1
    print(f"FAIL {what}")


def ok(what):
    print(f"ok   {what}")


def expect(cond, what):
    (ok if cond else fail)(what)
    return cond


def host_checks(peers_dir, tmp):
    """Part 1: what needs no PyTorch."""
    sys.path.insert(0, peers_dir)
    import wflops_peer

    # As wflops' harness: >= 4x L2 per pass, at most 64 sets, within 80% of free memory.
    mib = 2**20
    expect(wflops_peer.rotation_sets(50 * mib, 4 * mib) == 50, "1024^2 bf16 inputs (4 MiB) on a 50 MiB L2: 50 sets")
    expect(wflops_peer.rotation_sets(60 * mib, 1 * mib) == 64, "rotation is capped at 64 sets")
    expect(wflops_peer.rotation_sets(50 * mib, 4 * mib, free_bytes=40 * mib) == 8,
           "rotation stays within 80% of free memory")
    expect(wflops_peer.rotation_sets(0, 4 * mib) == 1, "no L2 (the host): one set")

    calls = [0]

    def one_ms():
        calls[0] += 1
        time.sleep(0.001)

    timing = wflops_peer.time_calls(None, one_ms, device="cpu", min_time_s=0.02, repetitions=3)
    expect(len(timing.seconds) == 3 and all(t * n >= 0.02 for t, n in zip(timing.seconds, timing.calls)),
           f"host timing: 3 repetitions of >= 0.02 s each ({timing.calls} calls)")
    expect(all(0.0009 < t < 0.01 for t in timing.seconds), f"host timing: ~1 ms a call ({timing.seconds})")

    # The stream hold, with a stand-in for the CUDA clock: a batch the host was still enqueueing
    # when the hold ended is dropped and the hold lengthened; after three tries such batches count.
    class FakeClock:
        def __init__(self, misses):
            self.misses, self.holds, self.timed = misses, [], 0

        def batch(self, fn, calls, hold_s):
            if not hold_s:  # warm-up: 1 ms a call on the "GPU", 0.1 ms to enqueue
                return calls * 1e-3, calls * 1e-4, None
            self.holds.append(hold_s)
            held = len(self.holds) > self.misses
            self.timed += held
            return calls * 1e-3, calls * 1e-4, held

    clock = FakeClock(misses=2)
    t = wflops_peer.time_calls(None, None, device="cuda", min_time_s=0.005, repetitions=2, clock=clock)
    expect(t.batch == 1 and t.calls == [5, 5] and t.held_share == 1.0 and clock.timed == 10,
           f"held timing: missed batches are dropped ({t.calls} calls, stream_held {t.held_share})")
    expect(clock.holds[1] > clock.holds[0] and clock.holds[2] > clock.holds[1],
           f"held timing: a missed hold is lengthened ({[f'{h:.2g}' for h in clock.holds[:3]]})")
    clock = FakeClock(misses=10**9)
    t = wflops_peer.time_calls(None, None, device="cuda", min_time_s=0.005, repetitions=2, clock=clock)
    expect(t.calls == [5, 5] and t.held_share == 0.0 and len(clock.holds) == 13 and clock.holds[3] == clock.holds[0],
           f"held timing: after three tries the first hold is kept and stream_held says 0 ({t.held_share})")
    t = wflops_peer.time_calls(None, None, device="cuda", min_time_s=0.005, repetitions=1, synchronizes=True,
                               clock=FakeClock(misses=0))
    expect(t.held_share is None and "no hold" in t.hold, f"a synchronising call is timed without the hold ({t.hold})")

    # The CUDA clock's own code, on a stand-in for torch.cuda whose events complete at once (so a
    # hold never outlasts the enqueueing) and whose spin kernel takes no time.
    class FakeEvent:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self):
            self.t = time.perf_counter()

        def query(self):
            return True

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    sleeps = []
    fake_cuda = types.SimpleNamespace(cuda=types.SimpleNamespace(Event=FakeEvent, _sleep=sleeps.append))
    t = wflops_peer.time_calls(fake_cuda, one_ms, device="cuda", min_time_s=0.01, repetitions=2)
    expect(len(t.calls) == 2 and t.held_share == 0.0 and sleeps and all(isinstance(c, int) and c > 0 for c in sleeps)
           and t.hold == "torch.cuda._sleep before each batch",
           f"CUDA clock: a spin of whole cycles before each batch, stream_held 0 when it never holds "
           f"({len(sleeps)} spins)")

    path = os.path.join(tmp, "writer.json")
    old = os.umask(0o022)
    try:
        results = wflops_peer.PeerResults(path, device="cpu")
        fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(OutOfMemoryError=MemoryError,
                                                                      empty_cache=lambda: None))
        with contextlib.redirect_stderr(io.StringIO()):  # the peer's own report of each error
            with results.errors_recorded("matmul/torch_matmul/bf16/m:1/n:1/k:1", fake_torch):
                raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx\nsecond line")
            with results.errors_recorded("matmul/torch_matmul/bf16/m:2/n:2/k:2", fake_torch):
                raise wflops_peer.VerificationError("verification failed: C rel err 0.5 (tolerance 0.01)")
        results.add("matmul/torch_matmul/bf16/m:4/n:4/k:4", "bf16", timing.seconds, 128.0, calls=timing.calls)
        results.close()
    finally:
        os.umask(old)
    with open(path) as f:
        doc = json.load(f)
    errors = [b for b in doc["benchmarks"] if b.get("error_occurred")]
    expect([e["error_message"] for e in errors] ==
           ["RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx",
            "verification failed: C rel err 0.5 (tolerance 0.01)"],
           "any exception is that benchmark's error (first line), and the run goes on")
    iterations = [b["iterations"] for b in doc["benchmarks"] if b.get("run_type") == "iteration"
                  and not b.get("error_occurred")]
    expect(iterations == timing.calls, "iteration entries carry the calls of their repetition")
    units = {b["aggregate_name"]: b.get("aggregate_unit") for b in doc["benchmarks"]
             if b.get("run_type") == "aggregate"}
    expect(units == {"mean": "time", "median": "time", "stddev": "time", "cv": "percentage"},
           f"aggregate units ({units})")
    expect(stat.S_IMODE(os.stat(path).st_mode) == 0o644, "result file mode 0644")
    expect(doc["context"]["interrupted"] is False and doc["context"]["source"] == "pytorch", "context after close")

    # The counter given as a function of a repetition's seconds (pct_peak_model).
    path = os.path.join(tmp, "rate.json")
    results = wflops_peer.PeerResults(path, device="cpu")
    results.add("model_step/hf_eager/bf16/x:1", "bf16", [0.5, 0.25], 1e12, counters={"double": lambda t: 2 * t})
    results.close()
    with open(path) as f:
        got = [b["double"] for b in json.load(f)["benchmarks"] if b.get("run_type") == "iteration"]
    expect(got == [1.0, 0.5], f"a counter given as a function gets each repetition's seconds ({got})")

    model_flop_checks(peers_dir)


# tests/cpu/test_flops_model.cpp's hand-checked figures: N_w, weight, attention and model FLOPs per step.
MODEL_FIGURES = {
    "gpt2": (326171200, 16031966822400, 187904819200, 16219871641600),
    "gpt2-small": (123532032, 12143692873728, 1082331758592, 13226024632320),
    "llama-b1": (961544192, 23630910062592, 962072674304, 24592982736896),
    "llama-b2": (961544192, 47261820125184, 1924145348608, 49185965473792),
}


def model_flop_checks(peers_dir):
    """The model peer's FLOP formulas and names, without PyTorch."""
    sys.path.insert(0, peers_dir)
    import model_peer
    bad = []
    for key, want in MODEL_FIGURES.items():
        c = model_peer.Config(*model_peer.CONFIGS[key])
        got = (model_peer.weights(c), model_peer.weight_flops(c), model_peer.attention_flops(c),
               model_peer.model_flops(c))
        if got != want:
            bad.append(f"{key}: {got} != {want}")
    expect(set(model_peer.CONFIGS) == set(MODEL_FIGURES) and not bad,
           "model peer: N_w, weight, attention and model FLOPs as tests/cpu/test_flops_model.cpp" +
           (f": {bad}" if bad else ""))
    names = [model_peer.Config(*model_peer.CONFIGS[k]).name("hf_eager", "fp16") for k in ("gpt2", "llama-b2")]
    expect(names == ["model_step/hf_eager/fp16/arch:gpt2/d:1600/L:8/h:25/s:256/b:32/V:50257",
                     "model_step/hf_eager/fp16/arch:llama/d:4096/L:2/h:32/kvh:8/ff:14336/s:4096/b:2/V:128256"],
           f"model peer: docs/model.md's names ({names})")


def formula_checks(peers_dir, wflops):
    """The peers that compute their FLOPs and bytes (MLP, MoE; attention for --device cpu) give
    wflops' own figures for every benchmark `wflops list` has, and their default configurations
    are benchmarks wflops has. Needs no PyTorch."""
    sys.path.insert(0, peers_dir)
    import attention_peer
    import mlp_peer
    import model_peer
    import moe_peer
    import wflops_peer
    specs = wflops_peer.wflops_specs(wflops, "full")
    bad, n = [], 0
    for s in specs.values():
        sh = dict(p.split(":") for p in s["shape"].split("/")) if s.get("shape") else {}
        if s["family"] == "moe_step":
            d, e, g, t = (int(sh[k]) for k in ("d", "E", "G", "tok"))
            got = (moe_peer.expert_weight_flops(d, t), moe_peer.step_bytes(d, e, g, t),
                   moe_peer.routing_flops(d, e, g, t))
            want = (s["flops"], s["bytes"], s["counters"]["routing_flops"])
        elif s["family"] in ("mlp_step", "mlp_fwd"):
            variant = "swiglu" if "swiglu" in s["implementation"] else "linear"
            got = (mlp_peer.step_flops(int(sh["d"]), int(sh["ff"]), int(sh["tok"]), s["family"] == "mlp_fwd",
                                       variant),)
            want = (s["flops"],)
        elif s["family"] == "model_step":
            c = model_peer.Config(sh["arch"], *(int(sh.get(k, 0)) for k in ("d", "L", "h", "kvh", "ff", "V", "s",
                                                                              "b")))
            c.kv_heads = c.kv_heads or c.heads  # a gpt2 name implies kvh = h and d_ff = 4d
            c.ffn = c.ffn or 4 * c.d
            got = (model_peer.weight_flops(c), model_peer.attention_flops(c))
            want = (s["flops"], s["counters"].get("attn_flops"))
        elif s["family"] in ("attention_fwd", "attention_bwd") and s["implementation"] == "fused":
            a = attention_peer.parse_shape(s["shape"])
            forward = s["family"] == "attention_fwd"
            got = (attention_peer.attention_flops(a["b"], a["h"], a["s"], a["d"], a["causal"], forward),
                   attention_peer.attention_bytes(a["b"], a["h"], a["s"], a["d"], forward))
            want = (s["flops"], s["bytes"])
        else:
            continue
        n += 1
        if got != want:
            bad.append(f"{s['name']}: {got} != {want}")
    expect(n > 0 and not bad, f"FLOPs and bytes of {n} MoE, MLP, attention (and model) benchmarks as wflops lists them"
           + (f": {bad[:3]}" if bad else ""))
    words = {"linear": "linear", "mixed_linear": "mixed_linear", "mixed_relu_residual": "mixed_unfused_relu_residual"}
    missing = []
    for v in mlp_peer.VARIANTS:
        for d, ff, t in mlp_peer.shapes("all", v):
            dtype = mlp_peer.DEFAULT_DTYPE.get(v, "bf16")
            name = f"mlp_step/{words.get(v, 'unfused_' + v)}/{dtype}/d:{d}/ff:{ff}/tok:{t}"
            missing += [] if name in specs else [name]
    for d, e, g, t, r in moe_peer.configs("all"):
        name = f"moe_step/grouped/bf16/d:{d}/E:{e}/G:{g}/tok:{t}/route:{r}"
        missing += [] if name in specs else [name]
    # The model peer writes our names with its own implementation word: each of its configurations,
    # in both dtypes, must be one of our eager and fused steps, or compare has nothing to pair it with.
    for config in model_peer.CONFIGS.values():
        for impl in ("eager", "fused"):
            for dtype in ("bf16", "fp16"):
                name = model_peer.Config(*config).name(impl, dtype)
                missing += [] if name in specs else [name]
    expect(not missing, "every default MLP, MoE and model peer configuration (its default dtype) is a wflops benchmark"
           + (f": missing {missing[:3]}" if missing else ""))


def torch_python():
    return os.environ.get("WFLOPS_PEER_PYTHON") or sys.executable


def module_missing(python, module):
    """Why `module` does not import in `python` (None when it does, after printing its version)."""
    run = subprocess.run([python, "-c", f"import {module}; print({module}.__version__)"], capture_output=True,
                         text=True)
    if run.returncode != 0:
        lines = (run.stderr or run.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit code {run.returncode}"
    print(f"{module} {run.stdout.strip()} in {python}")
    return None


def load_validator(source_dir):
    try:
        import jsonschema
    except ImportError:
        print("note: jsonschema does not import here; result files are not validated against the schema")
        return None
    with open(os.path.join(source_dir, "docs", "result.schema.json")) as f:
        return jsonschema.Draft7Validator(json.load(f))


SMOKE = ["--device", "cpu", "--min-time", "0.01", "--repetitions", "2"]


def run_peer(python, peers_dir, script, out, extra=(), timeout=900):
    cmd = [python, os.path.join(peers_dir, f"{script}_peer.py"), *SMOKE, "--out", out, *extra]
    t0 = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=os.path.dirname(out))
    print(f"     {script} {' '.join(extra)}: exit {run.returncode} in {time.time() - t0:.0f} s")
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:])
    return run


def check_file(path, validator, wflops, expect_names, expect_errors, tolerance):
    """The peer's file: schema, context, every benchmark either a checked measurement or an
    expected error entry."""
    if not expect(os.path.exists(path), f"{os.path.basename(path)} written"):
        return None
    with open(path) as f:
        doc = json.load(f)
    base = os.path.basename(path)
    if validator is not None:
        errs = list(validator.iter_errors(doc))
        expect(not errs, f"{base} validates against the schema" + (f": {errs[0].message}" if errs else ""))
    ctx = doc["context"]
    expect(ctx.get("source") == "pytorch" and ctx.get("device") == "cpu" and ctx.get("interrupted") is False,
           f"{base}: context source pytorch, device cpu, not interrupted")
    expect("cublas" in ctx and (ctx.get("cudnn") is None or re.fullmatch(r"\d+\.\d+\.\d+", ctx["cudnn"])),
           f"{base}: cublas key, cudnn as major.minor.patch ({ctx.get('cudnn')})")
    expect(stat.S_IMODE(os.stat(path).st_mode) == 0o644, f"{base}: mode 0644")
    runs = {}
    for b in doc["benchmarks"]:
        runs.setdefault(b.get("run_name", b["name"]), []).append(b)
    names = set(runs)
    expect(names == set(expect_names), f"{base}: the expected benchmarks" +
           ("" if names == set(expect_names) else f" (missing {sorted(set(expect_names) - names)}, "
                                                   f"extra {sorted(names - set(expect_names))})"))
    for name, entries in runs.items():
        erred = [b for b in entries if b.get("error_occurred")]
        if any(re.search(p, name) for p in expect_errors):
            expect(erred and "tflops" not in erred[0], f"{name}: an error entry ({erred[0]['error_message'][:80]})"
                   if erred else f"{name}: expected an error entry")
            continue
        if erred:
            fail(f"{name}: unexpected error {erred[0]['error_message']}")
            continue
        median = [b for b in entries if b.get("aggregate_name") == "median"]
        iters = [b for b in entries if b.get("run_type") == "iteration"]
        good = (len(iters) == 2 and all(b["iterations"] >= 1 for b in iters) and median and
                median[0]["tflops"] > 0 and median[0]["flops"] > 0 and median[0]["verify_rel_err"] < tolerance and
                median[0]["batch"] >= 1)
        expect(good, f"{name}: 2 repetitions, checked (rel err "
                     f"{median[0]['verify_rel_err'] if median else '?'}), timed")
    if wflops:
        # compare takes two files at least: the peer's beside itself is enough to exercise its reader.
        run = subprocess.run([wflops, "compare", path, path], capture_output=True, text=True)
        expect(run.returncode == 0, f"wflops compare reads {base}" + ("" if run.returncode == 0 else
                                                                        f": {run.stderr.strip()[:200]}"))
    return doc


def argument_checks(python, peers_dir, tmp):
    existing = os.path.join(tmp, "existing.json")
    with open(existing, "w") as f:
        f.write("{}\n")
    cases = [("matmul", ["--repetitions", "0"], "repetitions.json"),
             ("attention", ["--min-time", "-1"], "min-time.json"),
             ("mlp", ["--variants", "linear,bogus"], "variants.json"),
             ("moe", ["--context-from", existing], "context.json"),
             ("model", ["--configs", "gpt2,bogus"], "configs.json")]
    for script, extra, out in cases:
        path = os.path.join(tmp, out)
        run = subprocess.run([python, os.path.join(peers_dir, f"{script}_peer.py"), "--device", "cpu",
                              "--out", path, *extra], capture_output=True, text=True)
        expect(run.returncode == 2 and not os.path.exists(path),
               f"{script} {' '.join(extra)}: refused (exit {run.returncode}) before creating its file")
    run = subprocess.run([python, os.path.join(peers_dir, "matmul_peer.py"), "--device", "cpu", "--out", existing],
                         capture_output=True, text=True)
    with open(existing) as f:
        kept = f.read() == "{}\n"
    expect(run.returncode == 2 and kept, "an existing --out is refused and left as it was")


UNIT = r'''
import sys, torch
sys.path.insert(0, sys.argv[1])
import moe_peer, mlp_peer, wflops_peer
torch.manual_seed(0)
bad = []
# Expert choice: every expert gets T/E tokens, so the constant offsets equal counted ones.
d, e, g, t = 64, 4, 2, 512
x, wr, w1, w2, dy = moe_peer.make_inputs(torch, d, e, g, t, torch.bfloat16, "cpu")
probs = (x.float() @ wr.float().t()).softmax(-1)
for routing in ("expert_choice", "token_choice"):
    offs = moe_peer.expert_choice_offsets(torch, e, g, t, "cpu")
    tokens, experts, got, inverse = moe_peer.route(torch, probs, e, g, routing, offs)
    counted = torch.cumsum(torch.bincount(experts, minlength=e * g), 0).to(torch.int32)
    if not torch.equal(got, counted):
        bad.append(f"{routing}: offsets {got.tolist()} != bincount {counted.tolist()}")
    if not bool((experts[1:] >= experts[:-1]).all()):
        bad.append(f"{routing}: assignments not sorted by expert")
# The expert-choice combine in several chunks still passes the fp64 check.
moe_peer.COMBINE_CHUNK_ELEMENTS = 64 * 100
for routing in ("expert_choice", "token_choice"):
    errors = moe_peer.check(torch, routing, "cpu")
    if wflops_peer.failed_checks(errors, moe_peer.TOLERANCE):
        bad.append(f"{routing} chunked combine: {errors}")
# Router inputs give logits of standard deviation about 1 (not one-hot routing).
std = (x.float() @ wr.float().t()).std().item()
if not 0.7 < std < 1.3:
    bad.append(f"router logit std {std}")
# The mixed-precision check's reference uses the weights rounded to the compute dtype.
m = mlp_peer.build(torch, 256, 1024, "mixed_relu_residual", torch.float32, "cpu")
errors = mlp_peer.check(torch, m, mlp_peer.autocast(torch, m, torch.bfloat16, "cpu"), 256, 512,
                        "mixed_relu_residual", torch.bfloat16, "cpu", False)
if wflops_peer.failed_checks(errors, mlp_peer.TOLERANCE):
    bad.append(f"mixed_relu_residual bf16 check: {errors}")
# The torch_compile settings (wflops_peer.compile_one_graph): a second graph of a configuration
# raises instead of running eagerly (checked with dynamo's eager back end to spare Inductor's
# compile time).
f = wflops_peer.compile_one_graph(torch, lambda a: a * 2 + 1, "default", backend="eager")
f(torch.ones(4))
try:
    f(torch.ones(5))
    bad.append("a recompile past the limit ran instead of raising")
except Exception as e:  # noqa: BLE001
    if "recompile" not in str(e).lower() and "limit" not in str(e).lower():
        bad.append(f"a recompile past the limit raised {type(e).__name__}: {e}")
print("\n".join(bad) if bad else "unit checks passed")
sys.exit(1 if bad else 0)
'''


# The model peer's check rests on this: with the labels of check_labels (-100 outside the first m
# positions of the first k sequences), the loss and every gradient of the whole batch equal those of
# the model run on those k x m tokens alone (causal attention, sequences independent). In fp64, for
# both architectures and both attention implementations.
MODEL_UNIT = r'''
import sys, torch, transformers
sys.path.insert(0, sys.argv[1])
import model_peer, wflops_peer
torch.manual_seed(0)
bad = []
# (CHECK_TOKENS, sequences kept, positions kept) on 3 sequences of 32: a sequence cut short, and two whole
for tokens, want_k, want_n in ((16, 1, 16), (64, 2, 32)):
    model_peer.CHECK_TOKENS = tokens
    for arch in ("gpt2", "llama"):
        c = model_peer.Config(*model_peer.CPU_CONFIGS[arch])
        c.batch = 3
        for attn in ("eager", "sdpa"):
            m = model_peer.build(torch, transformers, c, attn, "cpu").to(torch.float64)
            ids = torch.randint(0, c.vocab, (c.batch, c.seq))
            labels, k, n = model_peer.check_labels(torch, ids, c)
            if (k, n) != (want_k, want_n) or int((labels != -100).sum()) != k * n:
                bad.append(f"{arch}: check_labels kept {k} x {n}, not {want_k} x {want_n}")
            full = m(input_ids=ids, labels=labels).loss
            full.backward()
            grads = {name: p.grad.clone() for name, p in m.named_parameters()}
            m.zero_grad(set_to_none=True)
            part = m(input_ids=ids[:k, :n], labels=labels[:k, :n]).loss
            part.backward()
            err = max([abs(full.item() - part.item())] +
                      [wflops_peer.relative_error(p.grad, grads[name]) for name, p in m.named_parameters()])
            if not err < 1e-12:
                bad.append(f"{arch} {attn}: the batch with ignored labels differs from its checked tokens by {err}")
        if abs(model_peer.expected_loss(c) - full.item()) > model_peer.LOSS_SLACK:
            bad.append(f"{arch}: loss {full.item()} far from {model_peer.expected_loss(c)}")
# A failed check is that benchmark's error entry, with no figure (here: a loss no model can meet).
import argparse, json, os, tempfile
args = argparse.Namespace(device="cpu", min_time=0.01, repetitions=1, compile_attn="sdpa", compile_mode="default")
with tempfile.TemporaryDirectory() as d:
    results = wflops_peer.PeerResults(os.path.join(d, "r.json"), device="cpu")
    model_peer.LOSS_SLACK = -1.0
    model_peer.run_one(torch, transformers, results, args, model_peer.Config(*model_peer.CPU_CONFIGS["gpt2"]),
                       "hf_eager", "bf16", torch.bfloat16)
    results.close()
    with open(os.path.join(d, "r.json")) as f:
        entries = json.load(f)["benchmarks"]
    if not (len(entries) == 1 and entries[0].get("error_message", "").startswith("verification failed: loss")):
        bad.append(f"a failed check: {entries}")
print("\n".join(bad) if bad else "model check premise holds; a failed check is an error entry")
sys.exit(1 if bad else 0)
'''


# wflops' own fp64 reference of the whole step (src/reference/model_reference.hpp) on weights, tokens and
# targets read from a file, its loss and every gradient written back in named_tensors' order.
REFERENCE_DRIVER = r'''
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "reference/model_reference.hpp"
using namespace wflops::model_ref;
template <class C, class P>
static int run(const C& c, P p, FILE* in, FILE* out, double (*step)(const C&, const P&, const std::vector<long>&,
                                                                     const std::vector<long>&, P&)) {
  std::vector<long> tokens(c.tokens()), targets(c.tokens());
  bool ok = fread(tokens.data(), 8, tokens.size(), in) == tokens.size() &&
            fread(targets.data(), 8, targets.size(), in) == targets.size();
  for (auto& [name, t] : named_tensors(p)) ok = ok && fread(t->data(), 8, t->size(), in) == t->size();
  if (!ok) return 1;
  P grads;
  const double loss = step(c, p, tokens, targets, grads);
  fwrite(&loss, 8, 1, out);
  for (auto& [name, t] : named_tensors(grads)) fwrite(t->data(), 8, t->size(), out);
  return 0;
}
int main(int, char** argv) {
  const std::string arch = argv[1];
  const long V = atol(argv[2]), s = atol(argv[3]), d = atol(argv[4]), h = atol(argv[5]), L = atol(argv[6]);
  const long b = atol(argv[7]);
  FILE* in = fopen(argv[8], "rb");
  FILE* out = fopen(argv[9], "wb");
  if (!in || !out) return 1;
  if (arch == "gpt2") {
    Gpt2Config c;
    c.vocab = V, c.seq = s, c.hidden = d, c.heads = h, c.layers = L, c.batch = b;
    return run<Gpt2Config, Gpt2Params>(c, gpt2_zero_params(c), in, out, gpt2_loss_and_gradients);
  }
  LlamaConfig c;
  c.vocab = V, c.seq = s, c.hidden = d, c.heads = h, c.layers = L, c.batch = b;
  c.kv_heads = atol(argv[10]), c.ffn = atol(argv[11]);
  return run<LlamaConfig, LlamaParams>(c, llama_zero_params(c), in, out, llama_loss_and_gradients);
}
'''

# The model peer's HF models (model_peer.build, in fp64, with perturbed norm gains and biases) against
# REFERENCE_DRIVER: the same weights (HF's Conv1D matrices transposed to [out, in]), the HF ids
# [b, s] as tokens [:, :-1] and targets [:, 1:] (what HF's shifted loss predicts), the loss from the
# fp64 logits. Prints "arch loss_rel_err worst_grad_rel_err tensors".
REFERENCE_CHECK = r'''
import subprocess, sys, numpy, torch, transformers
sys.path.insert(0, sys.argv[1])
import model_peer, wflops_peer
torch.manual_seed(0)
driver, tmp = sys.argv[2], sys.argv[3]
for arch in ("gpt2", "llama"):
    c = model_peer.Config(*model_peer.CPU_CONFIGS[arch])
    m = model_peer.build(torch, transformers, c, "eager", "cpu").to(torch.float64)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    ids = torch.randint(0, c.vocab, (c.batch, c.seq))
    logits = m(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, c.vocab), ids[:, 1:].reshape(-1))
    loss.backward()
    P = dict(m.named_parameters())
    if arch == "gpt2":
        order = [("transformer.wte.weight", 0), ("transformer.wpe.weight", 0)]
        for l in range(c.layers):
            h = f"transformer.h.{l}."
            for n in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                      "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                      "mlp.c_proj.weight", "mlp.c_proj.bias"):
                order.append((h + n, n.endswith(".weight") and not n.startswith("ln")))
        order += [("transformer.ln_f.weight", 0), ("transformer.ln_f.bias", 0)]
    else:
        order = [("model.embed_tokens.weight", 0)]
        for l in range(c.layers):
            h = f"model.layers.{l}."
            names = ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                     "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                     "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")
            order += [(h + n, 0) for n in names]
        order += [("model.norm.weight", 0), ("lm_head.weight", 0)]

    def layout(name, transpose, t):  # to wflops' layout: Conv1D [in, out] -> [out, in]; wpe has s - 1 rows
        t = t.detach().double()
        t = t.t() if transpose else t
        return t[:c.seq - 1] if name == "transformer.wpe.weight" else t

    with open(f"{tmp}/in.bin", "wb") as f:
        f.write(ids[:, :-1].numpy().astype(numpy.int64).tobytes() + ids[:, 1:].numpy().astype(numpy.int64).tobytes())
        for name, tr in order:
            f.write(layout(name, tr, P[name]).contiguous().numpy().tobytes())
    extra = [str(c.kv_heads), str(c.ffn)] if arch == "llama" else []
    subprocess.run([driver, arch, *map(str, (c.vocab, c.seq - 1, c.d, c.heads, c.layers, c.batch)), f"{tmp}/in.bin",
                    f"{tmp}/out.bin", *extra], check=True)
    raw = numpy.fromfile(f"{tmp}/out.bin", dtype=numpy.float64)
    at, worst = 1, 0.0
    for name, tr in order:
        g = layout(name, tr, P[name].grad)
        ref = torch.from_numpy(raw[at:at + g.numel()].copy()).reshape(g.shape)
        at += g.numel()
        worst = max(worst, wflops_peer.relative_error(g, ref))
    assert at == raw.size, (at, raw.size)
    print(arch, abs(loss.item() - raw[0]) / raw[0], worst, len(order))
'''


def reference_checks(python, source_dir, peers_dir, tmp):
    """HF's models, as the model peer builds them, are wflops' model: the same loss and gradients as
    src/reference/model_reference.hpp on the same weights, compiled here with the host's C++ compiler."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cxx:
        print("skipped: no C++ compiler here for wflops' model reference (set CXX)")
        return
    src = os.path.join(source_dir, "src")
    with open(os.path.join(tmp, "driver.cpp"), "w") as f:
        f.write(REFERENCE_DRIVER)
    driver = os.path.join(tmp, "model_reference_driver")
    run = subprocess.run([cxx, "-O2", "-std=c++20", "-I", src, os.path.join(tmp, "driver.cpp"),
                          *(os.path.join(src, "reference", f) for f in ("model_reference.cpp", "attention_reference.cpp",
                                                                        "mlp_reference.cpp")),
                          "-o", driver],
                         capture_output=True, text=True, timeout=600)
    if not expect(run.returncode == 0, "wflops' model reference builds for the cross-check" +
                  ("" if run.returncode == 0 else f": {run.stderr.strip()[-300:]}")):
        return
    run = subprocess.run([python, "-c", REFERENCE_CHECK, peers_dir, driver, tmp], capture_output=True, text=True,
                         timeout=600)
    rows = {}
    for line in run.stdout.splitlines():
        arch, loss, grad, n = line.split()
        rows[arch] = (float(loss), float(grad), int(n))
    # GPT-2 is fp64 throughout in HF; HF's Llama computes its RMSNorm (and the eager softmax) in fp32
    # whatever the model's dtype (LlamaRMSNorm casts to torch.float32), about 1e-7 of difference.
    limits = {"gpt2": (1e-12, 1e-12), "llama": (1e-6, 1e-5)}
    expect(run.returncode == 0 and set(rows) == set(limits) and
           all(rows[a][0] < limits[a][0] and rows[a][1] < limits[a][1] for a in limits),
           "model peer: HF's GPT-2 and Llama give wflops' fp64 reference loss and every gradient "
           f"({rows or run.stderr.strip()[-300:]})")


def model_checks(python, source_dir, peers_dir, tmp, validator, wflops):
    """The model peer on tiny configurations: both architectures in bf16 (no loss scaling) and fp16
    (GradScaler), eager and SDPA attention, and one torch.compile row (Inductor on the host is slow)."""
    why = module_missing(python, "transformers")
    if why:
        print(f"skipped: the model peer's smoke runs need Hugging Face transformers, which does not import in "
              f"{python}: {why}")
        return
    run = subprocess.run([python, "-c", MODEL_UNIT, peers_dir], capture_output=True, text=True, timeout=600)
    expect(run.returncode == 0, "model peer: ignored labels confine loss and gradients to the checked tokens; "
                                "a failed check: " + (run.stdout.strip() or run.stderr.strip()[-500:]))
    reference_checks(python, source_dir, peers_dir, tmp)
    keys = {"gpt2": "arch:gpt2/d:64/L:2/h:4/s:32/b:2/V:512",
            "llama": "arch:llama/d:64/L:2/h:4/kvh:2/ff:176/s:32/b:2/V:512"}
    out = os.path.join(tmp, "model-eager.json")
    run_peer(python, peers_dir, "model", out, ["--configs", "gpt2,llama-b1", "--no-compile", "--dtype", "bf16",
                                               "--dtype", "fp16"])
    names = [f"model_step/{i}/{t}/{keys[a]}" for a in keys for t in ("bf16", "fp16") for i in ("hf_eager", "hf_sdpa")]
    doc = check_file(out, validator, wflops, names, [], 3e-2)
    if doc:
        sys.path.insert(0, peers_dir)
        import model_peer
        want = {a: model_peer.Config(*model_peer.CPU_CONFIGS[a]) for a in keys}
        med = [b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"]
        good = [b for b in med if b["flops"] == model_peer.weight_flops(want[b["name"].split("/")[3][5:]])
                and b["attn_flops"] == model_peer.attention_flops(want[b["name"].split("/")[3][5:]])
                and b["model_flops"] == b["flops"] + b["attn_flops"]]
        expect(med and len(good) == len(med), f"model peer: flops, attn_flops, model_flops of the tiny configurations "
                                              f"({len(good)} of {len(med)})")
        labels = {b["name"].split("/")[2]: b["label"] for b in med}
        expect("GradScaler" in labels.get("fp16", "") and "GradScaler" not in labels.get("bf16", "x GradScaler"),
               "model peer: fp16 rows scale the loss, bf16 rows do not")
        ctx = doc["context"]
        expect(all(k in ctx for k in ("transformers", "attention", "torch_compile", "mixed_precision", "optimizer",
                                      "step", "flops")), "model peer: its choices are in the context")
    out = os.path.join(tmp, "model-compile.json")
    run_peer(python, peers_dir, "model", out, ["--configs", "gpt2", "--impls", "hf_compile"])
    doc = check_file(out, validator, wflops, [f"model_step/hf_compile/bf16/{keys['gpt2']}"], [], 3e-2)
    if doc:
        labels = [b["label"] for b in doc["benchmarks"] if "label" in b]
        expect(labels and all("torch.compile mode=default, fullgraph, dynamic=False" in x and
                              "attn_implementation=sdpa" in x for x in labels),
               "model peer: hf_compile rows say how they were compiled")


def main():
    source_dir = os.path.abspath(sys.argv[1])
    wflops = sys.argv[2] if len(sys.argv) > 2 and os.path.exists(sys.argv[2]) else None
    peers_dir = os.path.join(source_dir, "scripts", "peers")
    with tempfile.TemporaryDirectory() as tmp:
        host_checks(peers_dir, tmp)
        if wflops:
            formula_checks(peers_dir, wflops)
        else:
            print("note: no wflops binary given (or not built): FLOP formulas and compare not checked")
        python = torch_python()
        why = module_missing(python, "torch")
        if why:
            print(f"{failures} failed in the host checks")
            print(f"SKIP: the peers' CPU smoke runs need PyTorch, which does not import in {python}: {why} "
                  "(set WFLOPS_PEER_PYTHON to a Python that has it)")
            return 1 if failures else SKIP
        validator = load_validator(source_dir)
        argument_checks(python, peers_dir, tmp)
        os.umask(0o022)

        run = subprocess.run([python, "-c", UNIT, peers_dir], capture_output=True, text=True, timeout=600)
        expect(run.returncode == 0, "MoE offsets and chunked combine, router logit spread, mixed check, "
                                    "recompile limit: "
                                    + (run.stdout.strip() or run.stderr.strip()[-500:]))

        out = os.path.join(tmp, "matmul.json")
        run_peer(python, peers_dir, "matmul", out, ["--l2-bytes", "65536"])
        names = [f"matmul/torch_matmul/{t}/m:96/n:64/k:48" for t in ("fp32", "tf32", "fp16", "bf16", "fp8")]
        doc = check_file(out, validator, wflops, names, [], 5e-2)
        if doc:
            rot = {b["l2_rotation"] for b in doc["benchmarks"] if "l2_rotation" in b and b["run_type"] == "iteration"}
            expect(rot and all(r > 1 for r in rot), f"matmul rotates its inputs on a 64 KiB L2 ({sorted(rot)})")

        out = os.path.join(tmp, "attention.json")
        run_peer(python, peers_dir, "attention", out)
        names = [f"attention_{p}/{i}/bf16/b:1/h:2/s:64/d:16/causal:{c}" for p in ("fwd", "bwd")
                 for i in ("torch_sdpa_flash", "torch_sdpa_cudnn", "torch_eager") for c in (0, 1)]
        check_file(out, validator, wflops, names, [r"/torch_sdpa_cudnn/"], 1e-2)

        out = os.path.join(tmp, "moe.json")
        run_peer(python, peers_dir, "moe", out)
        names = [f"moe_step/torch_grouped_mm/bf16/d:64/E:4/G:{g}/tok:512/route:{r}"
                 for g, r in ((2, "expert_choice"), (2, "token_choice"), (3, "expert_choice"))]
        doc = check_file(out, validator, wflops, names, [r"/G:3/"], 1e-2)
        if doc:
            med = [b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"]
            # 2 (2 T d + N d + 8 d^2 E) bf16 elements: src/model/flops_moe.cpp moe_step_bytes.
            want = 2.0 * (2 * 512 * 64 + 8 * 64 + 8 * 64 * 64 * 4) * 2
            expect(med and all(b.get("bytes") == want for b in med), f"moe bytes {want:.0f} as wflops counts them")

        out = os.path.join(tmp, "mlp-eager.json")
        run_peer(python, peers_dir, "mlp", out, ["--no-compile", "--forward-only"])
        variants = ["linear", "relu", "gelu", "relu_residual", "gelu_residual", "swiglu", "mixed_linear",
                    "mixed_relu_residual"]
        names = []
        for v in variants:
            dtype = "fp16" if v == "mixed_relu_residual" else "bf16"
            ff = 192 if v == "swiglu" else 256
            names += [f"{fam}/torch_eager_{v}/{dtype}/d:64/ff:{ff}/tok:128" for fam in ("mlp_step", "mlp_fwd")]
        check_file(out, validator, wflops, names, [], 1e-2)

        out = os.path.join(tmp, "mlp-compile.json")
        run_peer(python, peers_dir, "mlp", out, ["--variants", "gelu_residual"])
        names = [f"mlp_step/{i}_gelu_residual/bf16/d:64/ff:256/tok:128" for i in ("torch_eager", "torch_compile")]
        doc = check_file(out, validator, wflops, names, [], 1e-2)
        if doc:
            labels = [b["label"] for b in doc["benchmarks"] if "/torch_compile_" in b["name"] and "label" in b]
            expect(labels and all("torch.compile mode=default, fullgraph, dynamic=False" in x for x in labels),
                   "torch_compile rows say how they were compiled")
        model_checks(python, source_dir, peers_dir, tmp, validator, wflops)
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
