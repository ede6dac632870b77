#!/usr/bin/env python3
"""PyTorch peer of wflops' attention benchmarks: scaled_dot_product_attention with the flash and
cuDNN back ends (torch_sdpa_flash, torch_sdpa_cudnn) and an eager attention (matmul, softmax,
matmul: torch_eager), forward and backward, on the shapes of `wflops list` (attention_fwd and
attention_bwd), written in wflops' result format so `wflops compare` pairs them with ours.

FLOPs are wflops' own (public convention: forward 4 b h s^2 d, halved when causal; backward
2.5x forward). A backward is timed alone: the forward's graph is built once and
torch.autograd.grad is replayed with retain_graph. Each implementation is checked against an
fp64 attention on a small shape (output and the three gradients, rel err < 1e-2) before timing.
"""
import argparse
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

IMPLS = ["torch_sdpa_flash", "torch_sdpa_cudnn", "torch_eager"]


def parse_shape(shape):
    """'b:4/h:16/s:4096/d:128/causal:0' -> dict of ints."""
    return {k: int(v) for k, v in (part.split(":") for part in shape.split("/"))}


def attention(torch, impl, q, k, v, causal):
    """O for Q, K, V of [b, h, s, d] with the implementation's code path."""
    import torch.nn.functional as F
    if impl == "torch_eager":
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        if causal:
            s = q.shape[-2]
            mask = torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backend = SDPBackend.FLASH_ATTENTION if impl == "torch_sdpa_flash" else SDPBackend.CUDNN_ATTENTION
    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def check(torch, impl, dtype, d, causal):
    """Relative errors of O, dQ, dK, dV against fp64 on a small ragged shape."""
    gen = torch.Generator(device="cuda").manual_seed(1234)
    shape = (2, 3, 200, d)
    inputs = [(torch.rand(shape, generator=gen, device="cuda") * 2 - 1).to(dtype) for _ in range(4)]
    q, k, v, grad = inputs
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    out = attention(torch, impl, *leaves, causal)
    grads = torch.autograd.grad(out, leaves, grad)
    ref_leaves = [x.to(torch.float64).requires_grad_(True) for x in (q, k, v)]
    ref = attention(torch, "torch_eager", *ref_leaves, causal)
    ref_grads = torch.autograd.grad(ref, ref_leaves, grad.to(torch.float64))
    errors = [wflops_peer.relative_error(out, ref)]
    errors += [wflops_peer.relative_error(g, r) for g, r in zip(grads, ref_grads)]
    return max(errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    wflops_peer.add_wflops_list_arguments(parser, "attention", "attention")
    wflops_peer.add_common_arguments(parser, "attention")
    args = parser.parse_args()

    torch = wflops_peer.cuda_torch("attention")
    if torch is None:
        return 2
    specs = wflops_peer.wflops_specs(args.wflops, args.suite)
    # One wflops benchmark per shape and pass (the fused one), renamed for each PyTorch path.
    chosen = [s for s in specs.values()
              if s["family"] in ("attention_fwd", "attention_bwd") and s["implementation"] == "fused"
              and re.search(args.filter, s["name"])]
    results, out = wflops_peer.open_results(args, "attention")
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    checked = {}
    for spec in chosen:
        shape = parse_shape(spec["shape"])
        dtype = dtypes[spec["dtype"]]
        causal = bool(shape["causal"])
        forward = spec["family"] == "attention_fwd"
        for impl in IMPLS:
            name = wflops_peer.peer_name(spec["name"], impl)
            with results.errors_recorded(name, torch, also=(RuntimeError,)):
                key = (impl, spec["dtype"], shape["d"], causal)
                if key not in checked:
                    checked[key] = check(torch, impl, dtype, shape["d"], causal)
                if not checked[key] < 1e-2:
                    raise RuntimeError(f"verification failed: rel err {checked[key]:.3g} >= 1e-2")
                dims = (shape["b"], shape["h"], shape["s"], shape["d"])
                q, k, v, grad = [(torch.rand(dims, device="cuda") * 2 - 1).to(dtype) for _ in range(4)]
                if forward:
                    with torch.no_grad():
                        seconds = wflops_peer.time_cuda(lambda: attention(torch, impl, q, k, v, causal),
                                                        args.min_time, args.repetitions)
                else:
                    leaves = [x.requires_grad_(True) for x in (q, k, v)]
                    o = attention(torch, impl, *leaves, causal)
                    seconds = wflops_peer.time_cuda(
                        lambda: torch.autograd.grad(o, leaves, grad, retain_graph=True), args.min_time,
                        args.repetitions)
                    del o, leaves
                results.add(name, spec["dtype"], seconds, spec["flops"], spec.get("bytes", 0.0),
                            counters={"attn_flops": spec["flops"]}, label=spec.get("label", ""))
                print(f"{name}: {spec['flops'] / statistics.median(seconds) / 1e12:.1f} TFLOP/s", flush=True)
    results.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
