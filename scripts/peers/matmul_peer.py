#!/usr/bin/env python3
"""PyTorch peer of wflops' matmul benchmarks: torch.matmul (torch._scaled_mm for fp8) on the shapes
and dtypes of `wflops list` (family matmul), in the nn.Linear layout wflops uses (A [m, k] row-major,
B [n, k] row-major, C = A B^T), written in wflops' result format as matmul/torch_matmul/... so
`wflops compare --pair torch_matmul=cublaslt_auto` sets PyTorch's figure beside ours.

dtypes: fp32 (TF32 off), tf32 (torch.backends.cuda.matmul.allow_tf32 on, fp32 tensors), fp16, bf16,
fp8 (e4m3 inputs, unit scales, bf16 output, as wflops' fp8 GEMM). FLOPs are wflops' own (2 m n k).
Before timing, the first 64 rows of C are checked against fp64 on the same (rounded) inputs, with
CONVENTIONS.md's tolerances; small problems rotate copies of their inputs so L2 does not hold them.
"""
import argparse
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

IMPL = "torch_matmul"
TOLERANCE = {"fp32": 1e-5, "tf32": 1e-3, "fp16": 1e-2, "bf16": 1e-2, "fp8": 5e-2}
CHECK_ROWS = 64
ROTATE_BYTES = 256 * 2**20  # input copies until they exceed every current L2 several times over


def parse_shape(shape):
    """'m:4096/n:8192/k:4096' -> (m, n, k)."""
    d = {k: int(v) for k, v in (part.split(":") for part in shape.split("/"))}
    return d["m"], d["n"], d["k"]


def make_inputs(torch, dtype, m, n, k):
    """A [m, k] and B [n, k], uniform in [-1, 1), in the tensor type of `dtype`."""
    storage = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
               "fp8": torch.float8_e4m3fn}[dtype]
    a = (torch.rand(m, k, device="cuda") * 2 - 1).to(storage)
    b = (torch.rand(n, k, device="cuda") * 2 - 1).to(storage)
    return a, b


def matmul(torch, dtype, a, b):
    """C = A B^T (bf16 for fp8, else the input type)."""
    if dtype == "fp8":
        one = torch.ones((), device="cuda", dtype=torch.float32)
        return torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    return torch.matmul(a, b.t())


def check(torch, dtype, a, b):
    """Relative error of the first CHECK_ROWS rows of C against fp64 on the same inputs."""
    c = matmul(torch, dtype, a, b)
    rows = min(CHECK_ROWS, a.shape[0])
    ref = a[:rows].to(torch.float64) @ b.to(torch.float64).t()
    return wflops_peer.relative_error(c[:rows], ref)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wflops_peer.add_wflops_list_arguments(parser, "matmul", "quick")
    wflops_peer.add_common_arguments(parser, "matmul")
    args = parser.parse_args()

    torch = wflops_peer.cuda_torch("matmul")
    if torch is None:
        return 2
    specs = wflops_peer.wflops_specs(args.wflops, args.suite)
    # One peer benchmark per (dtype, shape), whichever wflops implementations measure it.
    chosen = {}
    for s in specs.values():
        if s["family"] == "matmul" and re.search(args.filter, s["name"]):
            chosen.setdefault((s["dtype"], s["shape"]), s)
    results, out = wflops_peer.open_results(args, "matmul")
    for (dtype, shape), spec in chosen.items():
        name = wflops_peer.peer_name(spec["name"], IMPL)
        with results.errors_recorded(name, torch, also=(RuntimeError,)):
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
            m, n, k = parse_shape(shape)
            a, b = make_inputs(torch, dtype, m, n, k)
            error = check(torch, dtype, a, b)
            if not error < TOLERANCE[dtype]:
                raise RuntimeError(f"verification failed: rel err {error:.3g} >= {TOLERANCE[dtype]}")
            one_set = a.element_size() * (a.numel() + b.numel())
            sets = [(a, b)] + [make_inputs(torch, dtype, m, n, k)
                               for _ in range(min(7, math.ceil(ROTATE_BYTES / one_set) - 1))]
            turn = [0]

            def run():
                x, y = sets[turn[0] % len(sets)]
                turn[0] += 1
                matmul(torch, dtype, x, y)

            results.measure(name, dtype, run, spec["flops"], args, bytes_=spec.get("bytes", 0.0),
                            counters={"verify_rel_err": error, "l2_rotation": len(sets)},
                            label=f"PyTorch {'torch._scaled_mm' if dtype == 'fp8' else 'torch.matmul'} "
                                  f"{spec.get('label', '')}".strip())
            del sets, a, b
    torch.backends.cuda.matmul.allow_tf32 = False
    results.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
