#!/usr/bin/env python3
"""PyTorch peer of wflops' attention benchmarks: scaled_dot_product_attention with the flash and
cuDNN back ends (torch_sdpa_flash, torch_sdpa_cudnn; each forced alone with
torch.nn.attention.sdpa_kernel, so a refused back end is that row's error, never a silent other
kernel) and an eager attention (matmul, softmax, matmul: torch_eager, its causal mask built once per
shape outside the timed call), forward and backward, on the shapes of `wflops list` (attention_fwd
and attention_bwd), written in wflops' result format so `wflops compare` pairs them with ours.

FLOPs and bytes are wflops' own (public convention: forward 4 b h s^2 d, halved when causal;
backward 2.5x forward). A backward is timed alone: the forward's graph is built once and
torch.autograd.grad is replayed with retain_graph. Each implementation is checked against an
fp64 attention on a small ragged shape (output and the three gradients, rel err < 1e-2) before
timing (counter verify_rel_err). mem_bytes: the peak of PyTorch's allocator over one call, less
what was allocated before the inputs (inputs, outputs, saved tensors and workspace; CUDA only).
Timing: wflops_peer.time_calls, batches behind torch.cuda._sleep.

--representative: the first forward and the first backward shape of each dtype. --device cpu:
tiny shapes, without `wflops list` (the cuDNN back end has no CPU kernel: its rows are errors).
"""
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

IMPLS = ["torch_sdpa_flash", "torch_sdpa_cudnn", "torch_eager"]
TOLERANCE = 1e-2  # fp16/bf16 (docs/conventions.md)
CHECK_SHAPE = (2, 3, 200)  # b, h, s of the fp64 check (s not a multiple of any tile)


def parse_shape(shape):
    """'b:4/h:16/s:4096/d:128/causal:0' -> dict of ints."""
    return {k: int(v) for k, v in (part.split(":") for part in shape.split("/"))}


def attention_flops(b, h, s, d, causal, forward):
    """src/flops_attention: 4 b h s^2 d forward (causal half), backward 2.5x forward."""
    f = 4.0 * b * h * s * s * d / (2.0 if causal else 1.0)
    return f if forward else 2.5 * f


def attention_bytes(b, h, s, d, forward):
    """Least bytes as wflops counts them (bf16/fp16 elements, fp32 log-sum-exp): forward reads
    Q, K, V and writes O and L; backward reads Q, K, V, O, dO, L and writes dQ, dK, dV."""
    return (4.0 if forward else 8.0) * b * h * s * d * 2 + b * h * s * 4.0


def cpu_specs():
    """Tiny stand-ins for `wflops list` entries (same fields), for --device cpu."""
    specs = {}
    b, h, s, d = 1, 2, 64, 16
    for family in ("attention_fwd", "attention_bwd"):
        for causal in (0, 1):
            shape = f"b:{b}/h:{h}/s:{s}/d:{d}/causal:{causal}"
            name = f"{family}/fused/bf16/{shape}"
            forward = family == "attention_fwd"
            specs[name] = {"name": name, "family": family, "implementation": "fused", "dtype": "bf16",
                           "shape": shape, "flops": attention_flops(b, h, s, d, causal, forward),
                           "bytes": attention_bytes(b, h, s, d, forward), "label": "cpu smoke shape"}
    return specs


def causal_mask(torch, s, device):
    """True above the diagonal: the positions a causal attention leaves out."""
    return torch.ones(s, s, dtype=torch.bool, device=device).triu(1)


def attention(torch, impl, q, k, v, causal, mask=None):
    """O for Q, K, V of [b, h, s, d] with the implementation's code path; the eager path takes
    its causal mask from the caller (built once per shape)."""
    import torch.nn.functional as F
    if impl == "torch_eager":
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        if causal:
            scores = scores.masked_fill(mask, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backend = SDPBackend.FLASH_ATTENTION if impl == "torch_sdpa_flash" else SDPBackend.CUDNN_ATTENTION
    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def check(torch, impl, dtype, d, causal, device):
    """Relative errors of O, dQ, dK, dV against fp64 on a small ragged shape."""
    gen = torch.Generator(device=device).manual_seed(1234)
    shape = CHECK_SHAPE + (d,)
    inputs = [(torch.rand(shape, generator=gen, device=device) * 2 - 1).to(dtype) for _ in range(4)]
    q, k, v, grad = inputs
    mask = causal_mask(torch, shape[2], device)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    out = attention(torch, impl, *leaves, causal, mask)
    grads = torch.autograd.grad(out, leaves, grad)
    ref_leaves = [x.to(torch.float64).requires_grad_(True) for x in (q, k, v)]
    ref = attention(torch, "torch_eager", *ref_leaves, causal, mask)
    ref_grads = torch.autograd.grad(ref, ref_leaves, grad.to(torch.float64))
    errors = {"O": wflops_peer.relative_error(out, ref)}
    for name, g, r in zip(("dQ", "dK", "dV"), grads, ref_grads):
        errors[name] = wflops_peer.relative_error(g, r)
    return errors


def choose(specs, pattern, representative):
    """One wflops benchmark per shape and pass (the fused one), renamed for each PyTorch path."""
    chosen = [s for s in specs.values()
              if s["family"] in ("attention_fwd", "attention_bwd") and s["implementation"] == "fused"
              and re.search(pattern, s["name"])]
    if representative:
        first = {}
        for s in chosen:
            first.setdefault((s["family"], s["dtype"]), s)
        chosen = list(first.values())
    return chosen


def run_one(torch, results, args, spec, impl, checked):
    name = wflops_peer.peer_name(spec["name"], impl)
    device = args.device
    with results.errors_recorded(name, torch):
        shape = parse_shape(spec["shape"])
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[spec["dtype"]]
        causal = bool(shape["causal"])
        forward = spec["family"] == "attention_fwd"
        key = (impl, spec["dtype"], shape["d"], causal)
        if key not in checked:
            try:
                checked[key] = check(torch, impl, dtype, shape["d"], causal, device)
            except Exception as e:  # noqa: BLE001 - a refused back end fails every row of its kind
                checked[key] = e
        if isinstance(checked[key], Exception):
            raise checked[key]
        errors = checked[key]
        message = wflops_peer.failed_checks(errors, TOLERANCE)
        if message:
            raise wflops_peer.VerificationError(message)
        cuda = device == "cuda"
        before = torch.cuda.memory_allocated() if cuda else 0
        dims = (shape["b"], shape["h"], shape["s"], shape["d"])
        q, k, v, grad = [(torch.rand(dims, device=device) * 2 - 1).to(dtype) for _ in range(4)]
        mask = causal_mask(torch, shape["s"], device) if impl == "torch_eager" and causal else None
        if forward:
            def run():
                with torch.no_grad():
                    attention(torch, impl, q, k, v, causal, mask)
        else:
            leaves = [x.requires_grad_(True) for x in (q, k, v)]
            o = attention(torch, impl, *leaves, causal, mask)

            def run():
                torch.autograd.grad(o, leaves, grad, retain_graph=True)
        counters = {"attn_flops": spec["flops"], "verify_rel_err": max(errors.values())}
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            run()
            torch.cuda.synchronize()
            counters["mem_bytes"] = float(torch.cuda.max_memory_allocated() - before)
        what = {"torch_sdpa_flash": "SDPA flash back end", "torch_sdpa_cudnn": "SDPA cuDNN back end",
                "torch_eager": "eager matmul-softmax-matmul"}[impl]
        results.measure(name, spec["dtype"], run, spec["flops"], args, bytes_=spec.get("bytes", 0.0),
                        counters=counters, label=f"PyTorch {what}; {spec.get('label', '')}".strip("; "),
                        torch=torch)


def main():
    parser = wflops_peer.new_parser(__doc__, "attention", wflops_list=("attention", "attention"))
    args = parser.parse_args()
    wflops_peer.validate_common(parser, args)

    loaded = wflops_peer.torch_and_listed_specs(args, "attention", cpu_specs)
    if loaded is None:
        return 2
    torch, specs = loaded
    chosen = choose(specs, args.filter, args.representative)
    results, out = wflops_peer.open_results(args, "attention", {
        "sdpa_backends": "torch_sdpa_flash: SDPBackend.FLASH_ATTENTION only; torch_sdpa_cudnn: "
                         "SDPBackend.CUDNN_ATTENTION only (torch.nn.attention.sdpa_kernel)"})
    checked = {}
    for spec in chosen:
        for impl in IMPLS:
            run_one(torch, results, args, spec, impl, checked)
    return wflops_peer.finish(results, out)


if __name__ == "__main__":
    sys.exit(main())
