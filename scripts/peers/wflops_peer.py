"""Shared by the PyTorch peer scripts: timing, checking and writing results in wflops' format.

A peer measures the same benchmark as wflops (same name, its own implementation word such as
torch_eager or torch_compile) and writes a result file that `wflops compare` reads beside
wflops' own: Google Benchmark's JSON layout, context "source": "pytorch", counters flops,
tflops, pct_peak (and bytes, gbps, attn_flops, ... where given), repetitions with median, mean,
stddev and cv aggregates. The FLOP counts come from wflops itself (`wflops list --json`), so the
two sides divide the same FLOPs by their own times.

This module imports torch only inside the functions that need it, so the writer can be tested
on a machine without PyTorch.
"""
import contextlib
import datetime
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile

# Context keys copied from a wflops result file of the same machine (--context-from): the GPU,
# its clocks, peaks and library versions, so that compare and pct_peak line up with wflops.
GPU_CONTEXT_KEYS = [
    "gpu_name", "gpu_slug", "gpu_index", "pci_bus_id", "sm_count", "cc", "mem_gib", "l2_mib",
    "sm_clock_max_mhz", "mem_clock_max_mhz", "power_limit_w", "driver", "cuda_driver",
    "peak_source", "peak_tflops_fp64", "peak_tflops_fp32", "peak_tflops_tf32",
    "peak_tflops_fp16", "peak_tflops_bf16", "peak_tflops_fp8", "peak_tflops_int8", "peak_gbps",
]


def add_common_arguments(parser, script):
    """The options every peer takes: where to write, whose GPU context to copy, how long to time."""
    parser.add_argument("--out", help=f"result file (default results/pytorch-{script}-<time>.json); never overwritten")
    parser.add_argument("--context-from", help="a wflops result file of this machine: GPU context and peaks")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls per benchmark")
    parser.add_argument("--repetitions", type=int, default=5)


def add_wflops_list_arguments(parser, what, default_suite):
    """--wflops, --suite, --filter: the peers that take their shapes from `wflops list`."""
    parser.add_argument("--wflops", default="build/wflops", help="the wflops binary (for names and FLOPs)")
    parser.add_argument("--suite", default=default_suite, help=f"wflops suite whose {what} shapes to run")
    parser.add_argument("--filter", default="", help="regular expression on the benchmark names")


def cuda_torch(script):
    """PyTorch with a CUDA device, or None after saying why. Imported only here, after argument
    parsing, so `--help` works on a machine without PyTorch."""
    try:
        import torch
    except ImportError as e:
        print(f"{script}_peer: PyTorch is not installed: {e}", file=sys.stderr)
        return None
    if not torch.cuda.is_available():
        print(f"{script}_peer: no CUDA device", file=sys.stderr)
        return None
    return torch


def open_results(args, script):
    """The peer's result file (args.out, or a new name under results/) and its path."""
    out = args.out or default_output("results", script)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    return PeerResults(out, args.context_from, {"peer": f"{script}_peer.py"}), out


def wflops_specs(wflops_binary, suite="full"):
    """name -> the benchmark description of `wflops list --json` (flops, bytes, counters, ...)."""
    out = subprocess.run([wflops_binary, "list", "--suite", suite, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return {s["name"]: s for s in json.loads(out)}


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


def time_cuda(fn, min_time_s=0.2, repetitions=5, warmup_s=0.05):
    """Seconds per call of fn(), one figure per repetition, timed with CUDA events after warm-up.
    Each repetition runs enough calls to last min_time_s / repetitions."""
    import torch
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed(calls):
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / 1e3

    spent, calls = 0.0, 1
    while spent < warmup_s:
        spent += timed(calls)
        calls *= 2
    per_call = max(timed(1), 1e-7)
    calls = max(1, int(min_time_s / repetitions / per_call))
    return [timed(calls) / calls for _ in range(repetitions)]


class PeerResults:
    """A result file in wflops' format, rewritten after every benchmark (like wflops' reporter)
    and marked interrupted until close(); it never overwrites an existing file."""

    def __init__(self, path, context_from=None, extra_context=None):
        self.path = path
        self.benchmarks = []
        self.context = self._context(context_from)
        self.context.update(extra_context or {})
        # Exclusive creation: an earlier result is never overwritten.
        with open(path, "x"):
            pass
        self._write(interrupted=True)

    @staticmethod
    def _context(context_from):
        ctx = {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host_name": socket.gethostname(), "host": socket.gethostname(),
            "executable": "scripts/peers", "num_cpus": os.cpu_count(), "source": "pytorch",
            "python": platform.python_version(),
        }
        try:
            import torch
            ctx.update({"torch": torch.__version__, "cuda_runtime": torch.version.cuda,
                        "cudnn": str(torch.backends.cudnn.version())})
            if torch.cuda.is_available():
                ctx["gpu_name"] = torch.cuda.get_device_name()
                cap = torch.cuda.get_device_capability()
                ctx["cc"] = f"{cap[0]}.{cap[1]}"
        except ImportError:
            pass
        if context_from:
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

    def add(self, name, dtype, seconds, flops, bytes_=0.0, counters=None, label=""):
        """One benchmark: `seconds` per call for each repetition; flops and bytes per call."""
        peak = self.peak(dtype)

        def counters_for(t):
            c = {"flops": flops, "tflops": flops / t / 1e12}
            if peak:
                c["pct_peak"] = 100.0 * c["tflops"] / peak
            if bytes_:
                c["bytes"] = bytes_
                c["gbps"] = bytes_ / t / 1e9
            c.update(counters or {})
            return c

        reps = len(seconds)
        common = {"run_name": name, "repetitions": reps, "threads": 1, "time_unit": "ms",
                  "label": label}
        for i, t in enumerate(seconds):
            self.benchmarks.append(dict(common, name=name, run_type="iteration", repetition_index=i,
                                        iterations=1, real_time=t * 1e3, cpu_time=t * 1e3,
                                        **counters_for(t)))
        per_rep = [counters_for(t) for t in seconds]
        times = [t * 1e3 for t in seconds]

        def aggregate(kind, fn):
            entry = dict(common, name=f"{name}_{kind}", run_type="aggregate", aggregate_name=kind,
                         iterations=reps, real_time=fn(times), cpu_time=fn(times))
            for key in per_rep[0]:
                entry[key] = fn([c[key] for c in per_rep])
            return entry

        stdev = (lambda v: statistics.stdev(v)) if reps > 1 else (lambda v: 0.0)
        cv = (lambda v: stdev(v) / statistics.mean(v) if statistics.mean(v) else 0.0)
        if reps > 1:
            self.benchmarks += [aggregate("mean", statistics.mean), aggregate("median", statistics.median),
                                aggregate("stddev", stdev), aggregate("cv", cv)]
        self._write(interrupted=True)

    def measure(self, name, dtype, fn, flops, args, bytes_=0.0, counters=None, label=""):
        """Times fn() (time_cuda, args.min_time and args.repetitions), adds it, prints its tau."""
        seconds = time_cuda(fn, args.min_time, args.repetitions)
        self.add(name, dtype, seconds, flops, bytes_, counters, label)
        print(f"{name}: {flops / statistics.median(seconds) / 1e12:.1f} TFLOP/s", flush=True)

    @contextlib.contextmanager
    def errors_recorded(self, name, torch, also=()):
        """Runs one benchmark: out of memory (and the exception types in `also`) becomes that
        benchmark's error in the file instead of ending the run; frees PyTorch's cache after."""
        try:
            yield
        except (torch.cuda.OutOfMemoryError, *also) as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, torch.cuda.OutOfMemoryError):
                message = "out of memory: " + message
            self.add_error(name, message)
            print(f"{name}: error: {message}", file=sys.stderr)
        finally:
            torch.cuda.empty_cache()

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
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)


def default_output(directory, script):
    """results/<gpu>-<script>-<timestamp>.json style path for a peer's file."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(directory, f"pytorch-{script}-{stamp}.json")
