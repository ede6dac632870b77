#!/usr/bin/env python3
"""PyTorch peer of wflops' MLP steps: the same steps as mlp_step/<impl>/... timed eagerly
(torch_eager: nn.Linear, F.relu / F.gelu(approximate="tanh"), residual, autograd) and under
torch.compile (torch_compile), written in wflops' result format so `wflops compare` pairs them
with wflops' unfused and fused steps. The gated MLP (variant swiglu: one bias-free Linear d -> 2 d_ff
whose output is chunked into gate and up, F.silu(g) * u, Linear d_ff -> d; d_ff = 8/3 d rounded up
to 64) answers wflops' unfused_swiglu / fused_swiglu. The mixed-precision variants (mixed_linear,
mixed_relu_residual) keep fp32 parameters, run the step under torch.autocast in the chosen dtype
(the weights are cast every step, gradients land in fp32) and end it with a fused AdamW step: what
wflops' mixed_linear and mixed_unfused_relu_residual do (cast, GEMMs, AdamW), the way a PyTorch
training loop does it. (No GradScaler: with inputs and weights in [-1, 1) nothing underflows.)

A step is forward + backward from a fixed random dy (parameter gradients and the input gradient);
FLOPs from wflops' FLOP model: 6 x (2 d d_ff) x tokens, forward-only 2 x (2 d d_ff) x tokens
(SwiGLU: 3 d d_ff weights instead of 2 d d_ff).
Before timing, each configuration is checked against an fp64 computation on a reduced token count.

    python3 scripts/peers/mlp_peer.py --out results/pytorch-mlp.json \\
        --context-from results/<wflops result>.json --sizes reference --dtype bf16
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

REFERENCE = (1600, 6400, 8192)
SWEEP_H = (768, 1600, 2048, 4096, 8192)
SWEEP_TOKENS = (2048, 8192, 32768, 65536)
# variant -> (activation, bias, residual, mixed precision)
VARIANTS = {
    "linear": (None, False, False, False),
    "relu": ("relu", True, False, False),
    "gelu": ("gelu", True, False, False),
    "relu_residual": ("relu", True, True, False),
    "gelu_residual": ("gelu", True, True, False),
    "swiglu": ("swiglu", False, False, False),
    "mixed_linear": (None, False, False, True),
    "mixed_relu_residual": ("relu", True, True, True),
}
# The gated MLP's sizes (wflops' mlp_bench.cpp): the reference d and T, and h = 2048, 4096 at 8k, 32k.
SWIGLU_H = (2048, 4096)
SWIGLU_TOKENS = (8192, 32768)
CHECK_TOKENS = 256  # reduced shape of the fp64 check
TOLERANCE = 1e-2    # fp16/bf16 (CONVENTIONS.md)


def mlp_weights(d, d_ff, variant="linear"):
    # src/flops_mlp.hpp: mlp_weights, swiglu_weights
    return (3.0 if variant == "swiglu" else 2.0) * d * d_ff


def swiglu_hidden(d):
    return -(-8 * d // (3 * 64)) * 64  # ceil(8 d / 3 / 64) * 64 (flops::swiglu_hidden): 1600 -> 4288


def step_flops(d, d_ff, tokens, forward_only, variant="linear"):
    return (2.0 if forward_only else 6.0) * mlp_weights(d, d_ff, variant) * tokens


def shapes(sizes, variant="linear"):
    if variant == "swiglu":
        ds = [(REFERENCE[0], REFERENCE[2])]
        if sizes == "all":
            ds += [(h, t) for h in SWIGLU_H for t in SWIGLU_TOKENS]
        return [(d, swiglu_hidden(d), t) for d, t in ds]
    if sizes == "reference":
        return [REFERENCE]
    out = [REFERENCE]
    for h in SWEEP_H:
        for t in SWEEP_TOKENS:
            if (h, 4 * h, t) != REFERENCE:
                out.append((h, 4 * h, t))
    return out


def build(torch, d, d_ff, variant, dtype, device):
    """The module in dtype (a mixed-precision variant's fp32 masters: pass torch.float32)."""
    act, bias, residual, _ = VARIANTS[variant]
    nn, F = torch.nn, torch.nn.functional

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.d_ff = d_ff
            # SwiGLU: one Linear gives gate and up ([2 d_ff, d], gate rows first, as wflops' W1).
            self.fc1 = nn.Linear(d, 2 * d_ff if act == "swiglu" else d_ff, bias=bias)
            self.fc2 = nn.Linear(d_ff, d, bias=bias)

        def forward(self, x):
            h = self.fc1(x)
            if act == "swiglu":
                g, u = h.chunk(2, dim=-1)
                h = F.silu(g) * u
            elif act == "relu":
                h = F.relu(h)
            elif act == "gelu":
                h = F.gelu(h, approximate="tanh")
            y = self.fc2(h)
            return y + x if residual else y

    m = Mlp().to(device=device, dtype=dtype)
    with torch.no_grad():  # uniform in [-1, 1), as wflops fills its buffers
        for p in m.parameters():
            p.uniform_(-1, 1)
    return m


def autocast(torch, module, dtype):
    """module (fp32 parameters) run under torch.autocast in dtype: its Linears cast the weights."""
    def forward(x):
        with torch.autocast("cuda", dtype=dtype):
            return module(x)
    return forward


def check(torch, module, forward, d, variant, dtype, device):
    """Relative errors of y, dx and the parameter gradients of forward (the module, eager or
    compiled) against fp64 on CHECK_TOKENS tokens."""
    x = (torch.rand(CHECK_TOKENS, d, device=device) * 2 - 1).to(dtype).requires_grad_(True)
    dy = (torch.rand(CHECK_TOKENS, d, device=device) * 2 - 1).to(dtype)
    module.zero_grad(set_to_none=True)
    y = forward(x)
    y.backward(dy)
    ref = build(torch, d, module.d_ff, variant, torch.float64, device)
    ref.load_state_dict({k: v.to(torch.float64) for k, v in module.state_dict().items()})
    x64 = x.detach().to(torch.float64).requires_grad_(True)
    y64 = ref(x64)
    y64.backward(dy.to(torch.float64))
    errors = {"y": wflops_peer.relative_error(y, y64), "dx": wflops_peer.relative_error(x.grad, x64.grad)}
    for (name, p), (_, p64) in zip(module.named_parameters(), ref.named_parameters()):
        errors["d" + name] = wflops_peer.relative_error(p.grad, p64.grad)
    module.zero_grad(set_to_none=True)
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wflops_peer.add_common_arguments(ap, "mlp")
    ap.add_argument("--sizes", choices=["reference", "all"], default="reference",
                    help="the reference d=1600 d_ff=6400 T=8192 only (SwiGLU: d_ff=4288), or also h=768..8192 at "
                         "2k..64k tokens (SwiGLU: h=2048, 4096 at 8k, 32k)")
    ap.add_argument("--dtype", choices=["bf16", "fp16"], action="append",
                    help="repeatable; default bf16")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ",".join(VARIANTS))
    ap.add_argument("--no-compile", action="store_true", help="torch_eager only")
    ap.add_argument("--forward-only", action="store_true", help="also time the forward passes (mlp_fwd)")
    args = ap.parse_args()

    torch = wflops_peer.cuda_torch("mlp")
    if torch is None:
        return 2
    device = "cuda"
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    results, out = wflops_peer.open_results(args, "mlp")
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")
    implementations = ["torch_eager"] + ([] if args.no_compile else ["torch_compile"])
    for dname in args.dtype or ["bf16"]:
        dtype = dtypes[dname]
        for variant in variants:
            mixed = VARIANTS[variant][3]
            for d, d_ff, tokens in shapes(args.sizes, variant):
                for impl in implementations:
                    for forward_only in ([False, True] if args.forward_only else [False]):
                        family = "mlp_fwd" if forward_only else "mlp_step"
                        # Implementation word: <impl>_<variant> (torch_eager_linear beside wflops'
                        # linear, torch_compile_gelu_residual beside fused_gelu_residual, ...), so
                        # `wflops compare --pair torch_compile_gelu_residual=fused_gelu_residual`
                        # pairs exactly one peer step with one wflops step.
                        name = f"{family}/{impl}_{variant}/{dname}/d:{d}/ff:{d_ff}/tok:{tokens}"
                        with results.errors_recorded(name, torch):
                            module = build(torch, d, d_ff, variant, torch.float32 if mixed else dtype, device)
                            inner = torch.compile(module) if impl == "torch_compile" else module
                            fn = autocast(torch, inner, dtype) if mixed else inner
                            optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True) if mixed else None
                            errors = check(torch, module, fn, d, variant, dtype, device)
                            bad = {k: e for k, e in errors.items() if not e < TOLERANCE}
                            if bad:
                                results.add_error(name, f"verification failed: {bad}")
                                continue
                            x = (torch.rand(tokens, d, device=device) * 2 - 1).to(dtype).requires_grad_(True)
                            dy = (torch.rand(tokens, d, device=device) * 2 - 1).to(dtype)

                            def run():
                                if forward_only:
                                    with torch.no_grad():
                                        fn(x)
                                else:  # fresh gradients each step, as after zero_grad()
                                    module.zero_grad(set_to_none=True)
                                    x.grad = None
                                    fn(x).backward(dy)
                                    if optimizer is not None:
                                        optimizer.step()

                            results.measure(name, dname, run, step_flops(d, d_ff, tokens, forward_only, variant), args,
                                            counters={"verify_rel_err": max(errors.values())},
                                            label=f"PyTorch {impl} {variant} MLP d={d} d_ff={d_ff} T={tokens}")
    results.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
