#!/usr/bin/env python3
"""PyTorch peer of wflops' matmul benchmarks: torch.matmul (torch._scaled_mm for fp8) on the shapes
and dtypes of `wflops list` (family matmul), in the nn.Linear layout wflops uses (A [m, k] row-major,
B [n, k] row-major, C = A B^T), written in wflops' result format as matmul/torch_matmul/... so
`wflops compare --pair torch_matmul=cublaslt_auto` sets PyTorch's figure beside ours.

dtypes: fp32 (TF32 off), tf32 (torch.backends.cuda.matmul.allow_tf32 on, fp32 tensors), fp16, bf16,
fp8 (e4m3 inputs, unit tensor-wise scales made once outside the timed call, bf16 output,
use_fast_accum=False, as wflops' fp8 GEMM; where wflops lists a *_fastacc implementation, the
peer also times use_fast_accum=True as torch_matmul_fastacc). FLOPs and bytes are wflops' own.
Before timing, the first 64 rows of C are checked against fp64 on the same (rounded) inputs, with
docs/conventions.md's tolerances. Inputs are replicated and rotated call by call as wflops does it: as
many sets as make one pass read at least 4x the L2 size (from the device properties), at most 64,
within 80% of free memory (counter l2_rotation). Timing: wflops_peer.time_calls, batches behind
torch.cuda._sleep.

--representative: one shape per dtype (wflops' reference 4096x8192x4096 where listed, else the
first listed). --device cpu: tiny shapes of every dtype, without `wflops list`.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

IMPL = "torch_matmul"
IMPL_FASTACC = "torch_matmul_fastacc"
TOLERANCE = {"fp32": 1e-5, "tf32": 1e-3, "fp16": 1e-2, "bf16": 1e-2, "fp8": 5e-2}
CHECK_ROWS = 64
REFERENCE_SHAPE = "m:4096/n:8192/k:4096"
# Bytes per element of the inputs and of C (fp8 writes bf16), for the least bytes of a GEMM as
# wflops counts them: A and B read once, C written once.
ELEM_IN = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1}
ELEM_OUT = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 2}


def parse_shape(shape):
    """'m:4096/n:8192/k:4096' -> (m, n, k)."""
    d = {k: int(v) for k, v in (part.split(":") for part in shape.split("/"))}
    return d["m"], d["n"], d["k"]


def cpu_specs():
    """Tiny stand-ins for `wflops list` entries (same fields), one per dtype, for --device cpu."""
    specs = {}
    for dtype in TOLERANCE:
        m, n, k = 96, 64, 48
        name = f"matmul/cublaslt_auto/{dtype}/m:{m}/n:{n}/k:{k}"
        specs[name] = {"name": name, "family": "matmul", "implementation": "cublaslt_auto", "dtype": dtype,
                       "shape": f"m:{m}/n:{n}/k:{k}", "flops": 2.0 * m * n * k,
                       "bytes": float((m * k + n * k) * ELEM_IN[dtype] + m * n * ELEM_OUT[dtype]),
                       "label": "cpu smoke shape"}
    return specs


def storage_dtype(torch, dtype):
    return {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
            "fp8": torch.float8_e4m3fn}[dtype]


def make_inputs(torch, dtype, m, n, k, device):
    """A [m, k] and B [n, k], uniform in [-1, 1), in the tensor type of `dtype`."""
    storage = storage_dtype(torch, dtype)
    a = (torch.rand(m, k, device=device) * 2 - 1).to(storage)
    b = (torch.rand(n, k, device=device) * 2 - 1).to(storage)
    return a, b


class Matmul:
    """C = A B^T (bf16 for fp8, else the input type). For fp8 the unit scales are made here, once:
    torch._scaled_mm takes them as fp32 tensors (one per operand for tensor-wise scaling)."""

    def __init__(self, torch, dtype, device, fast_accum=False):
        self.torch, self.dtype, self.fast_accum = torch, dtype, fast_accum
        if dtype == "fp8":
            self.scale_a = torch.ones((), device=device, dtype=torch.float32)
            self.scale_b = torch.ones((), device=device, dtype=torch.float32)

    def __call__(self, a, b):
        torch = self.torch
        if self.dtype == "fp8":
            return torch._scaled_mm(a, b.t(), scale_a=self.scale_a, scale_b=self.scale_b,
                                    out_dtype=torch.bfloat16, use_fast_accum=self.fast_accum)
        return torch.matmul(a, b.t())


def check(torch, matmul, a, b):
    """Relative error of the first CHECK_ROWS rows of C against fp64 on the same inputs."""
    c = matmul(a, b)
    rows = min(CHECK_ROWS, a.shape[0])
    ref = a[:rows].to(torch.float64) @ b.to(torch.float64).t()
    return wflops_peer.relative_error(c[:rows], ref)


def choose(specs, pattern, representative):
    """One peer benchmark per (dtype, shape, fast accumulation), whichever wflops implementations
    measure it; with representative, one shape per dtype (and accumulation)."""
    chosen = {}
    for s in specs.values():
        if s["family"] == "matmul" and re.search(pattern, s["name"]):
            chosen.setdefault((s["dtype"], s["shape"], s["implementation"].endswith("_fastacc")), s)
    if representative:
        picked = {}
        for (dtype, shape, fastacc), s in chosen.items():
            key = (dtype, fastacc)
            if key not in picked or shape == REFERENCE_SHAPE:
                picked[key] = ((dtype, shape, fastacc), s)
        chosen = dict(picked.values())
    return chosen


def run_one(torch, results, args, dtype, shape, fastacc, spec, l2_bytes):
    name = wflops_peer.peer_name(spec["name"], IMPL_FASTACC if fastacc else IMPL)
    with results.errors_recorded(name, torch):
        if fastacc and dtype != "fp8":
            raise wflops_peer.PeerError("fast accumulation is an fp8 option of torch._scaled_mm")
        if args.device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        m, n, k = parse_shape(shape)
        matmul = Matmul(torch, dtype, args.device, fastacc)
        a, b = make_inputs(torch, dtype, m, n, k, args.device)
        error = check(torch, matmul, a, b)
        message = wflops_peer.failed_checks({"C": error}, TOLERANCE[dtype])
        if message:
            raise wflops_peer.VerificationError(message)
        one_set = a.element_size() * (a.numel() + b.numel())
        count = wflops_peer.rotation_sets(l2_bytes, one_set, wflops_peer.free_device_bytes(torch, args.device))
        sets = [(a, b)] + [make_inputs(torch, dtype, m, n, k, args.device) for _ in range(count - 1)]
        turn = [0]

        def run():
            x, y = sets[turn[0] % len(sets)]
            turn[0] += 1
            matmul(x, y)

        what = f"torch._scaled_mm use_fast_accum={fastacc}" if dtype == "fp8" else "torch.matmul"
        results.measure(name, dtype, run, spec["flops"], args, bytes_=spec.get("bytes", 0.0),
                        counters={"verify_rel_err": error, "l2_rotation": len(sets)},
                        label=f"PyTorch {what} {spec.get('label', '')}".strip(), torch=torch)


def main():
    parser = wflops_peer.new_parser(__doc__, "matmul", wflops_list=("matmul", "quick"))
    parser.add_argument("--l2-bytes", type=int,
                        help="L2 size for the input rotation (default: the device's; the host has none)")
    args = parser.parse_args()
    wflops_peer.validate_common(parser, args)
    if args.l2_bytes is not None and args.l2_bytes < 0:
        parser.error("--l2-bytes must not be negative")

    loaded = wflops_peer.torch_and_listed_specs(args, "matmul", cpu_specs)
    if loaded is None:
        return 2
    torch, specs = loaded
    chosen = choose(specs, args.filter, args.representative)
    l2_bytes = args.l2_bytes if args.l2_bytes is not None else wflops_peer.device_l2_bytes(torch, args.device)
    results, out = wflops_peer.open_results(args, "matmul", {
        "l2_policy": f"inputs replicated and rotated call by call until a pass reads >= {wflops_peer.L2_MULTIPLE:g}x "
                     f"the L2 size ({l2_bytes} bytes; at most {wflops_peer.MAX_INPUT_SETS} sets, within "
                     f"{wflops_peer.ROTATION_MEMORY_SHARE * 100:.0f}% of free memory); counter l2_rotation"})
    for (dtype, shape, fastacc), spec in chosen.items():
        run_one(torch, results, args, dtype, shape, fastacc, spec, l2_bytes)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    return wflops_peer.finish(results, out)


if __name__ == "__main__":
    sys.exit(main())
