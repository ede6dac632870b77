"""Shared by the PyTorch peer scripts: timing, checking and writing results in wflops' format.

A peer measures the same benchmark as wflops (same name, its own implementation word such as
torch_eager or torch_compile) and writes a result file that `wflops compare` reads beside
wflops' own: Google Benchmark's JSON layout, context "source": "pytorch", counters flops,
tflops, pct_peak (and bytes, gbps, attn_flops, ... where given), repetitions with median, mean,
stddev and cv aggregates. The FLOP counts come from wflops itself (`wflops list --json`) or from
the same formulas, so the two sides divide the same FLOPs by their own times.

Timing follows wflops' harness (src/cuda/harness.cpp): warm-up, then batches of calls between two
CUDA events aiming at about 1 ms of GPU time (at most 128 calls); each batch is queued behind a
spin kernel (torch.cuda._sleep) so that the GPU runs the calls back to back, and the time measured
is the GPU's, not the host's dispatch; every repetition runs batches for at least --min-time
seconds (as Google Benchmark's --benchmark_min_time, which wflops passes on); an iteration entry
carries the number of calls of its repetition. A call that synchronises with the host (e.g.
torch._grouped_mm's per-group fallback) cannot be held back: its batches run without the hold and
say so. With --device cpu the same code runs with a host timer: a smoke run of a peer's logic,
whose figures measure nothing.

This module imports torch only inside the functions that need it, so the writer can be tested
on a machine without PyTorch.
"""
import argparse
import contextlib
import ctypes
import datetime
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# Context keys copied from a wflops result file of the same machine (--context-from): the GPU,
# its clocks, peaks and library versions, so that compare and pct_peak line up with wflops.
GPU_CONTEXT_KEYS = [
    "gpu_name", "gpu_slug", "gpu_index", "pci_bus_id", "sm_count", "cc", "mem_gib", "l2_mib",
    "sm_clock_max_mhz", "mem_clock_max_mhz", "power_limit_w", "driver", "cuda_driver",
    "peak_source", "peak_tflops_fp64", "peak_tflops_fp32", "peak_tflops_tf32",
    "peak_tflops_fp16", "peak_tflops_bf16", "peak_tflops_fp8", "peak_tflops_int8", "peak_gbps",
]

# The harness's constants (src/batch_plan.hpp, src/cuda/harness.cpp): the least warm-up time, a
# batch's target GPU time, and the L2 rotation's rule. wflops lets a held batch have up to 4096
# launches if it enqueues at most about 500 stream operations (the queue holds about 1000); a
# PyTorch call's operations are not counted here, so a batch has at most 128 calls, which keeps a
# call of up to 3 operations within that bound (longer calls make smaller batches).
WARMUP_S = 0.2
BATCH_S = 1e-3
MAX_BATCH = 128
L2_MULTIPLE = 4.0
MAX_INPUT_SETS = 64
ROTATION_MEMORY_SHARE = 0.8
# The hold before a batch: at least this long, and twice the host's time to enqueue a batch;
# lengthened (doubled) whenever a batch outlasts it, never beyond MAX_HOLD_S.
MIN_HOLD_S = 2e-4
MAX_HOLD_S = 2.0

CPU_GPU_NAME = "none (--device cpu: a smoke run, no measurement)"


def new_parser(doc, script, wflops_list=None):
    """The peer's argument parser, its description `doc`, with the options every peer takes; with
    wflops_list = (what, default suite), the `wflops list` options before them."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if wflops_list is not None:
        add_wflops_list_arguments(parser, *wflops_list)
    add_common_arguments(parser, script)
    return parser


def add_compile_arguments(parser, compiled, no_compile_help):
    """--no-compile and --compile-mode (compile_one_graph's mode), for the implementation `compiled`."""
    parser.add_argument("--no-compile", action="store_true", help=no_compile_help)
    parser.add_argument("--compile-mode", default="default",
                        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                        help=f"torch.compile's mode for {compiled} (default: default, no CUDA graphs)")


def add_common_arguments(parser, script):
    """The options every peer takes: where to write, whose GPU context to copy, how long to time."""
    parser.add_argument("--out", help=f"result file (default results/pytorch-{script}-<time>.json); "
                                      "never overwritten")
    parser.add_argument("--context-from", help="a wflops result file of this machine: GPU context and peaks")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds of timed calls in each repetition (as wflops' --benchmark_min_time)")
    parser.add_argument("--repetitions", type=int, default=5, help="repetitions of each benchmark (default 5)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: tiny shapes and a host timer, a smoke run of the peer's logic "
                             "(check, timing, result file, error entries); its figures measure nothing")
    parser.add_argument("--representative", action="store_true",
                        help="one configuration per family and dtype (see the peer's description)")


def add_wflops_list_arguments(parser, what, default_suite):
    """--wflops, --suite, --filter: the peers that take their shapes from `wflops list`."""
    parser.add_argument("--wflops", default="build/wflops", help="the wflops binary (for names and FLOPs)")
    parser.add_argument("--suite", default=default_suite, help=f"wflops suite whose {what} shapes to run")
    parser.add_argument("--filter", default="", help="regular expression on the benchmark names")


def validate_common(parser, args):
    """Refuses bad arguments (through parser.error, exit code 2) before anything is created."""
    if not (args.min_time > 0 and math.isfinite(args.min_time)):
        parser.error(f"--min-time must be a positive number of seconds, not {args.min_time}")
    if args.repetitions < 1:
        parser.error(f"--repetitions must be at least 1, not {args.repetitions}")
    if args.out and os.path.exists(args.out):
        parser.error(f"--out {args.out} exists; a result file is never overwritten")
    if args.context_from:
        try:
            with open(args.context_from) as f:
                ctx = json.load(f)["context"]
            if not isinstance(ctx, dict):
                raise ValueError("its context is not an object")
        except (OSError, ValueError, KeyError, TypeError) as e:
            parser.error(f"--context-from {args.context_from}: not a readable wflops result file ({e})")
    if getattr(args, "filter", ""):
        try:
            re.compile(args.filter)
        except re.error as e:
            parser.error(f"--filter {args.filter!r}: {e}")


def load_torch(script, device="cuda"):
    """PyTorch (with a CUDA device when device is "cuda"), or None after saying why. Imported only
    here, after argument parsing, so `--help` works on a machine without PyTorch."""
    try:
        import torch
    except ImportError as e:
        print(f"{script}_peer: PyTorch is not installed: {e}", file=sys.stderr)
        return None
    if device == "cuda" and not torch.cuda.is_available():
        print(f"{script}_peer: no CUDA device (--device cpu runs a smoke run on the host)", file=sys.stderr)
        return None
    if device == "cpu":
        # One thread: a smoke run's tiny operations only lose to thread start-up on a shared host.
        torch.set_num_threads(1)
    return torch


def cuda_torch(script):
    """load_torch with a CUDA device (kept for callers of the earlier name)."""
    return load_torch(script, "cuda")


def open_results(args, script, choices=None):
    """The peer's result file (args.out, or a new name under results/) and its path. `choices`
    (a dict) records how the peer ran: timing method, compile mode, ... in the context."""
    out = args.out or default_output("results", script)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    device = getattr(args, "device", "cuda")
    extra = {"peer": f"{script}_peer.py", "device": device,
             "repetitions": args.repetitions, "min_time_s": args.min_time,
             "timing": timing_description(device)}
    extra.update(choices or {})
    return PeerResults(out, args.context_from, extra, device=device), out


def timing_description(device):
    if device == "cpu":
        return "host timer (time.perf_counter) around batches of calls: --device cpu, a smoke run"
    return (f"CUDA events around batches of calls (about {BATCH_S * 1e3:g} ms of GPU time, at most {MAX_BATCH}), "
            "each queued behind torch.cuda._sleep so the GPU runs it back to back (counter stream_held: "
            "share of batches whose hold outlasted the host's enqueueing; a call that synchronises with "
            "the host is timed without the hold and says so in its label)")


def wflops_specs(wflops_binary, suite="full"):
    """name -> the benchmark description of `wflops list --json` (flops, bytes, counters, ...)."""
    out = subprocess.run([wflops_binary, "list", "--suite", suite, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return {s["name"]: s for s in json.loads(out)}


def torch_and_listed_specs(args, script, cpu_specs):
    """For a peer that takes its shapes from `wflops list`: PyTorch (load_torch) and the benchmarks,
    cpu_specs() for --device cpu, else `args.wflops list --json` of args.suite; None after saying
    why either cannot be had."""
    torch = load_torch(script, args.device)
    if torch is None:
        return None
    if args.device == "cpu":
        return torch, cpu_specs()
    try:
        return torch, wflops_specs(args.wflops, args.suite)
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        print(f"{script}_peer: cannot read `{args.wflops} list --json`: {e}", file=sys.stderr)
        return None


def compile_options(mode):
    """torch.compile's arguments for --compile-mode, and whether that mode uses CUDA graphs
    (reduce-overhead and max-autotune do; torch.compile's documentation)."""
    return {"mode": None if mode == "default" else mode, "dynamic": False, "fullgraph": True}, \
        mode in ("reduce-overhead", "max-autotune")


def compile_label(mode):
    """How a benchmark compiled with compile_one_graph ran, for its label."""
    return f"torch.compile mode={mode}, fullgraph, dynamic=False, " \
        f"{'CUDA graphs' if compile_options(mode)[1] else 'no CUDA graphs'}"


def compile_one_graph(torch, module, mode, **options):
    """torch.compile(module) for --compile-mode `mode`, after torch._dynamo.reset() with a recompile
    limit of 1 that raises when hit (fail_on_recompile_limit_hit) instead of running eagerly.
    `options` go to torch.compile as well (a test's backend="eager")."""
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = 1
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(module, **compile_options(mode)[0], **options)


def finish(results, out):
    """Closes the result file and says where it is; main's exit code, 0."""
    results.close()
    print(f"wrote {out}")
    return 0


def peer_name(wflops_name, implementation):
    """The wflops benchmark name with its implementation part replaced."""
    parts = wflops_name.split("/")
    parts[1] = implementation
    return "/".join(parts)


def relative_error(out, ref):
    """||out - ref|| / ||ref|| in float64; NaN anywhere gives NaN (which never passes)."""
    import torch
    out = out.detach().to(torch.float64)
    ref = ref.detach().to(torch.float64)
    denom = torch.linalg.vector_norm(ref).item()
    return torch.linalg.vector_norm(out - ref).item() / (denom if denom > 0 else 1.0)


def failed_checks(errors, tolerance):
    """The entries of {what: rel err} that do not pass (NaN never passes), as one message, or ""."""
    bad = {k: v for k, v in errors.items() if not v < tolerance}
    if not bad:
        return ""
    return "verification failed: " + ", ".join(f"{k} rel err {v:.3g}" for k, v in bad.items()) + \
        f" (tolerance {tolerance:g})"


def rotation_sets(l2_bytes, set_bytes, free_bytes=None):
    """Input sets to rotate so that one pass reads at least L2_MULTIPLE times the L2 size, at most
    MAX_INPUT_SETS, within ROTATION_MEMORY_SHARE of free memory (choose_input_sets in wflops)."""
    sets = 1
    if l2_bytes and set_bytes > 0:
        sets = min(max(math.ceil(L2_MULTIPLE * l2_bytes / set_bytes), 1), MAX_INPUT_SETS)
    while free_bytes is not None and sets > 1 and sets * set_bytes > ROTATION_MEMORY_SHARE * free_bytes:
        sets -= 1
    return sets


def device_l2_bytes(torch, device):
    """The L2 size from the device properties (0 on the host)."""
    if device != "cuda":
        return 0
    return torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size


def free_device_bytes(torch, device):
    if device != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info()
    return free


class Timing:
    """Seconds per call and calls of each repetition, and how the batches were run."""

    def __init__(self, seconds, calls, batch, held_share, hold):
        self.seconds, self.calls, self.batch, self.held_share, self.hold = seconds, calls, batch, held_share, hold


class _CudaClock:
    def __init__(self, torch):
        self.torch = torch
        self.start = torch.cuda.Event(enable_timing=True)
        self.stop = torch.cuda.Event(enable_timing=True)
        self.cycles_per_s = None

    def calibrate(self):
        """Measures the spin's rate now (after the warm-up, at the clocks the batches will run at:
        torch.cuda._sleep counts GPU clock cycles)."""
        self.cycles_per_s = _sleep_rate(self.torch)

    def batch(self, fn, calls, hold_s):
        """GPU seconds of `calls` calls, the host's seconds to enqueue them, and whether the hold
        (None: no hold) still ran when the host had enqueued the last call."""
        torch = self.torch
        if hold_s:
            torch.cuda._sleep(int(hold_s * self.cycles_per_s))
        self.start.record()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        host = time.perf_counter() - t0
        # The start event completes when the spin kernel ends: still pending now means the GPU had
        # not begun the batch when its last call was queued, so it ran the calls back to back.
        held = (not self.start.query()) if hold_s else None
        self.stop.record()
        self.stop.synchronize()
        return self.start.elapsed_time(self.stop) / 1e3, host, held


class _HostClock:
    def batch(self, fn, calls, hold_s):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        host = time.perf_counter() - t0
        return host, host, None


def _sleep_rate(torch):
    """Cycles per second of torch.cuda._sleep (a spin of that many GPU clock cycles), measured."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 10_000_000
    start.record()
    torch.cuda._sleep(cycles)
    stop.record()
    stop.synchronize()
    return cycles / max(start.elapsed_time(stop) / 1e3, 1e-6)


def time_calls(torch, fn, device="cuda", min_time_s=0.5, repetitions=5, synchronizes=False, clock=None):
    """Times fn() as wflops' harness times a launch (see the module's description): warm-up with
    growing batches, a batch size for about BATCH_S of device time, then `repetitions`
    repetitions of at least min_time_s each. synchronizes: fn waits for the GPU itself, so its
    batches cannot be held back and run without the hold. clock: a stand-in for the CUDA clock
    (its batch(fn, calls, hold_s) method), for tests without a GPU."""
    if clock is None:
        clock = _CudaClock(torch) if device == "cuda" else _HostClock()
    hold = device == "cuda" and not synchronizes
    spent, count, per_call, host_per_call = 0.0, 1, 0.0, 0.0
    while spent < WARMUP_S:
        gpu, host, _ = clock.batch(fn, count, 0.0)
        spent += gpu
        per_call, host_per_call = gpu / count, host / count
        count = min(count * 2, MAX_BATCH)
    batch = min(max(math.ceil(BATCH_S / max(per_call, 1e-9)), 1), MAX_BATCH)
    if hold and hasattr(clock, "calibrate"):
        clock.calibrate()
    first_hold = min(max(MIN_HOLD_S, 2.0 * host_per_call * batch), MAX_HOLD_S) if hold else 0.0
    hold_s, lengthenings = first_hold, 0
    seconds, calls, batches, held_batches = [], [], 0, 0
    for _ in range(repetitions):
        total, n = 0.0, 0
        while total < min_time_s or n == 0:
            gpu, host, held = clock.batch(fn, batch, hold_s)
            if held is False and lengthenings < 3:
                # The host was still enqueueing when the hold ended, so the GPU may have waited for
                # it: drop the batch and lengthen the hold. After three tries the host is taken to
                # be blocked by a full launch queue (the GPU is then busy, not waiting): the first
                # hold is kept and such batches count, as the counter stream_held shows.
                lengthenings += 1
                hold_s = min(max(2.0 * hold_s, 2.0 * host), MAX_HOLD_S) if lengthenings < 3 else first_hold
                continue
            total += gpu
            n += batch
            batches += 1
            held_batches += held is True
        seconds.append(total / n)
        calls.append(n)
    if device != "cuda":
        how = "host timer"
    elif hold:
        how = "torch.cuda._sleep before each batch"
    else:
        how = "no hold (the call synchronises with the host)"
    return Timing(seconds, calls, batch, held_batches / batches if hold else None, how)


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class PeerResults:
    """A result file in wflops' format, rewritten after every benchmark (like wflops' reporter)
    and marked interrupted until close(); it never overwrites an existing file."""

    def __init__(self, path, context_from=None, extra_context=None, device="cuda"):
        self.path = path
        self.benchmarks = []
        self.device = device
        self.context = self._context(context_from, device)
        self.context.update(extra_context or {})
        # Exclusive creation: an earlier result is never overwritten.
        with open(path, "x"):
            pass
        self._write(interrupted=True)

    @staticmethod
    def _context(context_from, device="cuda"):
        ctx = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host_name": socket.gethostname(), "host": socket.gethostname(),
            "executable": "scripts/peers", "num_cpus": os.cpu_count(), "source": "pytorch",
            "python": platform.python_version(),
        }
        try:
            import torch
            ctx.update({"torch": torch.__version__, "cuda_runtime": torch.version.cuda,
                        "cudnn": cudnn_version(torch), "cublas": cublas_version(torch)})
            if device == "cuda" and torch.cuda.is_available():
                ctx["gpu_name"] = torch.cuda.get_device_name()
                cap = torch.cuda.get_device_capability()
                ctx["cc"] = f"{cap[0]}.{cap[1]}"
                props = torch.cuda.get_device_properties(torch.cuda.current_device())
                ctx["sm_count"] = props.multi_processor_count
                ctx["l2_mib"] = props.L2_cache_size / 2**20
        except ImportError:
            pass
        if device != "cuda":
            ctx["gpu_name"] = CPU_GPU_NAME
        elif context_from:
            with open(context_from) as f:
                wflops_ctx = json.load(f)["context"]
            for key in GPU_CONTEXT_KEYS:
                if key in wflops_ctx:
                    ctx[key] = wflops_ctx[key]
            ctx["context_from"] = os.path.basename(context_from)
        ctx.setdefault("gpu_name", "unknown")
        return ctx

    def peak(self, dtype):
        value = self.context.get(f"peak_tflops_{dtype}")
        return value if isinstance(value, (int, float)) and value > 0 else None

    def add(self, name, dtype, seconds, flops, bytes_=0.0, counters=None, label="", calls=None):
        """One benchmark: `seconds` per call for each repetition, `calls` the number of calls each
        repetition timed (its iterations); flops and bytes per call. A counter given as a function
        takes a repetition's seconds per call (e.g. a second rate such as pct_peak_model)."""
        peak = self.peak(dtype)
        calls = calls or [1] * len(seconds)

        def counters_for(t):
            c = {}
            if flops:
                c.update(flops=flops, tflops=flops / t / 1e12)
                if peak:
                    c["pct_peak"] = 100.0 * c["tflops"] / peak
            if bytes_:
                c["bytes"] = bytes_
                c["gbps"] = bytes_ / t / 1e9
            c.update({k: v(t) if callable(v) else v for k, v in (counters or {}).items()})
            return c

        reps = len(seconds)
        common = {"run_name": name, "repetitions": reps, "threads": 1, "time_unit": "ms",
                  "label": label}
        for i, (t, n) in enumerate(zip(seconds, calls)):
            self.benchmarks.append(dict(common, name=name, run_type="iteration", repetition_index=i,
                                        iterations=int(n), real_time=t * 1e3, cpu_time=t * 1e3,
                                        **counters_for(t)))
        per_rep = [counters_for(t) for t in seconds]
        times = [t * 1e3 for t in seconds]

        def aggregate(kind, fn, unit="time"):
            entry = dict(common, name=f"{name}_{kind}", run_type="aggregate", aggregate_name=kind,
                         aggregate_unit=unit, iterations=reps, real_time=fn(times), cpu_time=fn(times))
            for key in per_rep[0]:
                entry[key] = fn([c[key] for c in per_rep])
            return entry

        def stdev(v):
            return statistics.stdev(v)

        def cv(v):  # a fraction, shown as a percentage (Google Benchmark's cv aggregate)
            mean = statistics.mean(v)
            return stdev(v) / mean if mean else 0.0

        if reps > 1:
            self.benchmarks += [aggregate("mean", statistics.mean), aggregate("median", statistics.median),
                                aggregate("stddev", stdev), aggregate("cv", cv, "percentage")]
        self._write(interrupted=True)

    def measure(self, name, dtype, fn, flops, args, bytes_=0.0, counters=None, label="", synchronizes=False,
                torch=None):
        """Times fn() (time_calls with args.device, args.min_time and args.repetitions), adds it with
        the counters batch (calls per timed batch), blocked and stream_held, prints its tau."""
        if torch is None:
            import torch
        device = getattr(args, "device", "cuda")
        timing = time_calls(torch, fn, device, args.min_time, args.repetitions, synchronizes)
        counters = dict(counters or {}, batch=timing.batch)
        if device == "cuda":  # wflops' counter: 1 when the timed batches were held back
            counters["blocked"] = 0 if timing.held_share is None else 1
        if timing.held_share is not None:
            counters["stream_held"] = timing.held_share
        label = f"{label}; timing: {timing.hold}".strip("; ")
        self.add(name, dtype, timing.seconds, flops, bytes_, counters, label, timing.calls)
        median = statistics.median(timing.seconds)
        what = f"{flops / median / 1e12:.4g} TFLOP/s" if flops else f"{bytes_ / median / 1e9:.4g} GB/s"
        print(f"{name}: {what}", flush=True)
        return timing

    @contextlib.contextmanager
    def errors_recorded(self, name, torch):
        """Runs one benchmark: any exception it raises (out of memory, a verification failure, an
        Inductor or cuBLAS error, a refused back end) becomes that benchmark's error in the file
        instead of ending the run; frees PyTorch's cache after. KeyboardInterrupt still ends the
        run (the file stays marked interrupted)."""
        try:
            yield
        except Exception as e:  # noqa: BLE001 - every per-benchmark failure is that benchmark's error
            oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
            if oom is not None and isinstance(e, oom):
                message = "out of memory: " + first_line(e)
            elif isinstance(e, PeerError):
                message = str(e)
            else:
                message = f"{type(e).__name__}: {first_line(e)}"
            self.add_error(name, message)
            print(f"{name}: error: {message}", file=sys.stderr, flush=True)
        finally:
            empty = getattr(getattr(torch, "cuda", None), "empty_cache", None)
            if empty is not None:
                empty()

    def add_error(self, name, message):
        self.benchmarks.append({"name": name, "run_name": name, "run_type": "iteration",
                                "repetitions": 1, "threads": 1, "iterations": 0,
                                "error_occurred": True, "error_message": message})
        self._write(interrupted=True)

    def close(self):
        self._write(interrupted=False)

    def _write(self, interrupted):
        doc = {"context": dict(self.context, interrupted=interrupted), "benchmarks": self.benchmarks}
        for b in doc["benchmarks"]:
            for k, v in b.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise ValueError(f"{b['name']}: {k} is {v}")
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".peer-", suffix=".json")
        # mkstemp creates the file 0600; a result file gets the usual 0666 less the umask (0644).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)


class PeerError(RuntimeError):
    """A benchmark the peer refuses (e.g. a configuration wflops would refuse): its message is
    that benchmark's error as it stands."""


class VerificationError(PeerError):
    """A check before timing failed: the benchmark gets this error and no figure."""


def cudnn_version(torch):
    """cuDNN's version as wflops writes it ("9.19.0"; cudnnGetVersion gives 91900), or None."""
    try:
        v = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001 - no cuDNN in this build
        return None
    if not v:
        return None
    return f"{v // 10000}.{(v % 10000) // 100}.{v % 100}"


def cublas_version(torch):
    """cuBLAS's version ("13.1.0") from cublasGetProperty of the library PyTorch loaded (the
    libcublas.so mapped into this process, else the one its soname libcublas.so.<CUDA major>
    finds), or None."""
    if not getattr(torch.version, "cuda", None):
        return None
    path = f"libcublas.so.{torch.version.cuda.split('.')[0]}"
    try:
        with open("/proc/self/maps") as f:
            mapped = [line.split()[-1] for line in f if "/libcublas.so" in line]
        if mapped:
            path = mapped[0]
    except OSError:
        pass
    try:
        lib = ctypes.CDLL(path)
        parts = []
        for prop in range(3):  # libraryPropertyType: MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
            value = ctypes.c_int()
            if lib.cublasGetProperty(prop, ctypes.byref(value)) != 0:
                return None
            parts.append(str(value.value))
        return ".".join(parts)
    except (OSError, AttributeError):
        return None


def default_output(directory, script):
    """results/pytorch-<script>-<timestamp>.json style path for a peer's file."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(directory, f"pytorch-{script}-{stamp}.json")
