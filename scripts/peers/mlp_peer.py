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
Before timing, each configuration is checked at its timed shape, in its timed mode (the compiled
graph that is timed), against fp64 on its first 256 tokens (dy is zero past them, so every
gradient comes from them); the reference uses the weights rounded to the compute dtype, as
autocast multiplies them. torch_compile: torch.compile(mode=--compile-mode, fullgraph=True,
dynamic=False) after torch._dynamo.reset() for each configuration, with recompile_limit=1 and
fail_on_recompile_limit_hit, so a graph break or a second (unchecked) graph is that row's error,
never an eager row under the compiled name. Timing: wflops_peer.time_calls, batches behind
torch.cuda._sleep. Default dtype: bf16, mixed_relu_residual fp16 (as wflops registers them).

--representative: the reference size and the variants linear, gelu_residual and
mixed_relu_residual (unless --variants names others). --device cpu: d=64, T=128.

    python3 scripts/peers/mlp_peer.py --out results/pytorch-mlp.json \\
        --context-from results/<wflops result>.json --sizes reference --dtype bf16
"""
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
CHECK_TOKENS = 256  # tokens of the fp64 check
CPU_SHAPE = (64, 128)  # d, T of --device cpu
# The dtype wflops registers a variant in when --dtype is not given (its mixed_unfused_relu_residual
# step exists in fp16 only), so that default rows pair with wflops'.
DEFAULT_DTYPE = {"mixed_relu_residual": "fp16"}
# --representative: the steps gpu-check pairs with wflops' (linear, unfused/fused gelu_residual,
# mixed_unfused_relu_residual).
REPRESENTATIVE_VARIANTS = ("linear", "gelu_residual", "mixed_relu_residual")
TOLERANCE = 1e-2    # fp16/bf16 (docs/conventions.md)


def mlp_weights(d, d_ff, variant="linear"):
    # src/model/flops_mlp.hpp: mlp_weights, swiglu_weights
    return (3.0 if variant == "swiglu" else 2.0) * d * d_ff


def swiglu_hidden(d):
    return -(-8 * d // (3 * 64)) * 64  # ceil(8 d / 3 / 64) * 64 (flops::swiglu_hidden): 1600 -> 4288


def step_flops(d, d_ff, tokens, forward_only, variant="linear"):
    return (2.0 if forward_only else 6.0) * mlp_weights(d, d_ff, variant) * tokens


def shapes(sizes, variant="linear", device="cuda"):
    if device == "cpu":  # --device cpu: one tiny shape
        d, t = CPU_SHAPE
        return [(d, swiglu_hidden(d) if variant == "swiglu" else 4 * d, t)]
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


def autocast(torch, module, dtype, device):
    """module (fp32 parameters) run under torch.autocast in dtype: its Linears cast the weights."""
    def forward(x):
        with torch.autocast(device, dtype=dtype):
            return module(x)
    return forward


def check(torch, module, fn, d, tokens, variant, dtype, device, forward_only):
    """Relative errors of y, dx and the parameter gradients of fn (the module, eager or compiled,
    in the grad mode it is timed in) at the timed shape, against fp64 on the first CHECK_TOKENS
    tokens. The timed graph itself is checked (a compiled one is specialised to this shape): dy is
    zero past those tokens, so every gradient comes from them alone (a token's rows of y and dx
    depend on that token only) and the fp64 reference needs no more. The reference multiplies the
    weights as the step does: rounded to the compute dtype (autocast casts fp32 masters)."""
    rows = min(CHECK_TOKENS, tokens)
    x = (torch.rand(tokens, d, device=device) * 2 - 1).to(dtype).requires_grad_(True)
    dy = torch.zeros(tokens, d, device=device, dtype=dtype)
    dy[:rows] = (torch.rand(rows, d, device=device) * 2 - 1).to(dtype)
    module.zero_grad(set_to_none=True)
    if forward_only:
        with torch.no_grad():
            y = fn(x)
    else:
        y = fn(x)
        y.backward(dy)
    ref = build(torch, d, module.d_ff, variant, torch.float64, device)
    ref.load_state_dict({k: v.to(dtype).to(torch.float64) for k, v in module.state_dict().items()})
    x64 = x[:rows].detach().to(torch.float64).requires_grad_(True)
    y64 = ref(x64)
    errors = {"y": wflops_peer.relative_error(y[:rows], y64)}
    if not forward_only:
        y64.backward(dy[:rows].to(torch.float64))
        errors["dx"] = wflops_peer.relative_error(x.grad[:rows], x64.grad)
        for (name, p), (_, p64) in zip(module.named_parameters(), ref.named_parameters()):
            errors["d" + name] = wflops_peer.relative_error(p.grad, p64.grad)
    module.zero_grad(set_to_none=True)
    return errors


def run_one(torch, results, args, name, impl, variant, dname, dtype, d, d_ff, tokens, forward_only):
    device = args.device
    mixed = VARIANTS[variant][3]
    with results.errors_recorded(name, torch):
        module = build(torch, d, d_ff, variant, torch.float32 if mixed else dtype, device)
        inner = module
        if impl == "torch_compile":
            # A fresh compilation per configuration, for exactly its shape (dynamic=False) and in one
            # graph (fullgraph=True: a graph break is an error). The check below runs the graph that
            # is timed, so a second graph would be an unchecked one: the recompile limit is 1, and
            # hitting it raises (fail_on_recompile_limit_hit) instead of running eagerly under the
            # compiled name.
            inner = wflops_peer.compile_one_graph(torch, module, args.compile_mode)
        fn = autocast(torch, inner, dtype, device) if mixed else inner
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True) if mixed else None
        errors = check(torch, module, fn, d, tokens, variant, dtype, device, forward_only)
        message = wflops_peer.failed_checks(errors, TOLERANCE)
        if message:
            raise wflops_peer.VerificationError(message)
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

        how = "eager"
        if impl == "torch_compile":
            how = wflops_peer.compile_label(args.compile_mode)
        if mixed:
            how += f", autocast {dname} on fp32 masters, fused AdamW"
        results.measure(name, dname, run, step_flops(d, d_ff, tokens, forward_only, variant), args,
                        counters={"verify_rel_err": max(errors.values())},
                        label=f"PyTorch {impl} {variant} MLP d={d} d_ff={d_ff} T={tokens} ({how})", torch=torch)
    if impl == "torch_compile":
        torch._dynamo.reset()


def main():
    ap = wflops_peer.new_parser(__doc__, "mlp")
    ap.add_argument("--sizes", choices=["reference", "all"], default="reference",
                    help="the reference d=1600 d_ff=6400 T=8192 only (SwiGLU: d_ff=4288), or also h=768..8192 at "
                         "2k..64k tokens (SwiGLU: h=2048, 4096 at 8k, 32k)")
    ap.add_argument("--dtype", choices=["bf16", "fp16"], action="append",
                    help="repeatable; default: the dtype wflops registers each variant in "
                         "(bf16; mixed_relu_residual fp16)")
    ap.add_argument("--variants", help="comma-separated (default all): " + ",".join(VARIANTS))
    wflops_peer.add_compile_arguments(ap, "torch_compile", "torch_eager only")
    ap.add_argument("--forward-only", action="store_true", help="also time the forward passes (mlp_fwd)")
    args = ap.parse_args()
    wflops_peer.validate_common(ap, args)
    if args.variants is not None:
        variants = [v for v in args.variants.split(",") if v]
    else:
        variants = list(REPRESENTATIVE_VARIANTS if args.representative else VARIANTS)
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v} (known: {', '.join(VARIANTS)})")
    if not variants:
        ap.error("--variants names none")

    torch = wflops_peer.load_torch("mlp", args.device)
    if torch is None:
        return 2
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    implementations = ["torch_eager"] + ([] if args.no_compile else ["torch_compile"])
    compile_mode, graphs = args.compile_mode, wflops_peer.compile_options(args.compile_mode)[1]
    results, out = wflops_peer.open_results(args, "mlp", {
        "torch_compile": "none (--no-compile)" if args.no_compile else
        f"torch.compile(module, mode={compile_mode}, fullgraph=True, dynamic=False), torch._dynamo.reset() "
        "before each configuration, recompile_limit=1 with fail_on_recompile_limit_hit=True",
        "cuda_graphs": False if args.no_compile else graphs,
        "mixed_precision": "torch.autocast on fp32 master weights, fused AdamW (torch.optim.AdamW fused=True), "
                           "no GradScaler"})
    for variant in variants:
        for dname in args.dtype or [DEFAULT_DTYPE.get(variant, "bf16")]:
            for d, d_ff, tokens in shapes(args.sizes, variant, args.device):
                for impl in implementations:
                    for forward_only in ([False, True] if args.forward_only else [False]):
                        family = "mlp_fwd" if forward_only else "mlp_step"
                        # Implementation word: <impl>_<variant> (torch_eager_linear beside wflops'
                        # linear, torch_compile_gelu_residual beside fused_gelu_residual, ...), so
                        # `wflops compare --pair torch_compile_gelu_residual=fused_gelu_residual`
                        # pairs exactly one peer step with one wflops step.
                        name = f"{family}/{impl}_{variant}/{dname}/d:{d}/ff:{d_ff}/tok:{tokens}"
                        run_one(torch, results, args, name, impl, variant, dname, dtypes[dname], d, d_ff, tokens,
                                forward_only)
    return wflops_peer.finish(results, out)


if __name__ == "__main__":
    sys.exit(main())
