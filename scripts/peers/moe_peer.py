#!/usr/bin/env python3
"""PyTorch peer of wflops' MoE layer step (moe_step): the same fine-grained MoE layer in bf16 with
torch._grouped_mm for the expert GEMMs and the same permutation (assignments sorted by expert,
tokens in order within an expert; int32 cumulative offsets), forward + backward through autograd,
with expert-choice or token-choice routing, written in wflops' result format under the
implementation word torch_grouped_mm so that `wflops compare` pairs it with wflops' grouped, loop
and padded steps.

The layer (docs/moe.md): logits = x wr^T, probs = softmax over E*G experts; token choice takes
each token's top G experts, expert choice gives each expert the top 256/E tokens of every group of
256; y[t] = sum over t's assignments of probs[t, e] * W2_e gelu_tanh(W1_e x[t]). The step is
forward + backward from a fixed random dy (x, router and expert weights get gradients).
FLOPs and bytes from wflops' FLOP model: 6 x 8 d^2 x tokens (expert weight FLOPs); routing FLOPs
d x E x G x 14 x tokens in the counter routing_flops; bytes 2 (2 T d + N d + 8 d^2 E) x 2.

Done as wflops does it, without handicaps:
- the router is a bf16 GEMM with fp32 output (torch.mm with out_dtype=torch.float32, CUDA only;
  it has no autograd formula in PyTorch 2.11, so a small autograd.Function gives its backward:
  bf16 GEMMs on the bf16-rounded dlogits, as wflops' router backward);
- tokens per expert are counted without a host round trip: expert choice gives every expert T/E
  tokens (constant offsets), token choice takes the offsets from torch.searchsorted over the
  sorted expert indices (torch.bincount on CUDA waits for the host);
- the combine weights the expert outputs in bf16 and accumulates each token's rows once in fp32:
  token choice (exactly G rows a token) sums them in token order with sum(dtype=torch.float32),
  expert choice index_adds them into an fp32 y in chunks (a bounded fp32 copy of each chunk).
torch._grouped_mm runs CUTLASS grouped GEMMs on sm90/sm100 for bf16; on other GPUs (A100) PyTorch
2.11 falls back to a loop of matmuls that copies the offsets to the host each call: those rows are
named torch_grouped_mm_fallback and timed without the stream hold (the call synchronises), as
their label says. Router weights are uniform in +-3/sqrt(d) (logits of standard deviation about 1,
as a trained router has; inputs and expert weights uniform in [-1, 1)).
Before timing, each routing is checked against an fp64 computation on a small configuration (y
and every gradient, rel err < 1e-2). Timing: wflops_peer.time_calls.

--representative: G=8 only (per routing). --device cpu: d=64, E=4, G=2, T=512, both routings,
and one impossible configuration (G=3) that must become an error entry.

    python3 scripts/peers/moe_peer.py --out results/pytorch-moe.json \\
        --context-from results/<wflops result>.json --sizes quick
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

GROUP = 256         # expert choice: tokens per group (src/model/flops_moe.hpp kMoeExpertChoiceGroup)
TOLERANCE = 1e-2    # bf16 (docs/conventions.md)
GRANULARITIES = (1, 2, 4, 8, 16, 32, 64)
CHECK = (64, 4, 2, 512)  # d, E, G, T of the fp64 check
CPU_CONFIGS = [(64, 4, 2, 512, "expert_choice"), (64, 4, 2, 512, "token_choice"), (64, 4, 3, 512, "expert_choice")]
COMBINE_CHUNK_ELEMENTS = 1 << 26  # expert choice combine: fp32 copy of at most 256 MiB at a time
BF16_BYTES = 2


def expert_weight_flops(d, tokens):
    return 6.0 * 8.0 * d * d * tokens  # src/model/flops_moe.cpp moe_expert_weight_flops


def routing_flops(d, e, g, tokens):
    return d * e * g * 14.0 * tokens  # moe_routing_flops


def step_bytes(d, e, g, tokens):
    """src/model/flops_moe.cpp moe_step_bytes: inputs read once, outputs written once, in bf16."""
    return 2.0 * (2.0 * tokens * d + e * g * d + 8.0 * d * d * e) * BF16_BYTES


def config_error(d, e, g, tokens, routing):
    """The checks of moe_config_error / moe_expert_choice_error."""
    if (4 * d) % g or (4 * d // g) % 8:
        return f"d_expert = 4d/G = {4 * d}/{g} is not a whole multiple of 8"
    if routing == "expert_choice" and (GROUP % e or tokens % GROUP):
        return "expert choice needs E to divide 256 and T a multiple of 256"
    return ""


def configs(sizes, representative=False, device="cuda"):
    if device == "cpu":
        return list(CPU_CONFIGS)
    out = []
    gs = (1, 8) if sizes == "quick" else GRANULARITIES
    if representative:
        gs = (8,)
    for g in gs:
        out.append((2048, 64, g, 32768, "expert_choice"))
    if sizes == "all":
        for g in gs:
            out.append((2048, 64, g, 32768, "token_choice"))
    return out


def grouped_mm_falls_back(torch, device):
    """True where torch._grouped_mm is PyTorch's per-group fallback: its CUTLASS kernels serve
    compute capability 9.x and 10.x only (aten/src/ATen/native/cuda/GroupedBlas.cpp)."""
    return device == "cuda" and torch.cuda.get_device_capability()[0] not in (9, 10)


@functools.lru_cache(maxsize=None)
def router_function(torch):
    """The autograd.Function of the router (made once: a class per call would cost host time)."""

    class RouterLogits(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, wr):
            ctx.save_for_backward(x, wr)
            if x.is_cuda:  # one bf16 GEMM with fp32 accumulation and output
                return torch.mm(x, wr.t(), out_dtype=torch.float32)
            return x.float() @ wr.float().t()  # --device cpu: mm's out_dtype is CUDA only

        @staticmethod
        def backward(ctx, dlogits):
            x, wr = ctx.saved_tensors
            g = dlogits.to(x.dtype)  # dlogits in bf16, as wflops' router backward
            return g @ wr, g.t() @ x

    return RouterLogits


@functools.lru_cache(maxsize=None)
def permutation_function(torch):
    """Rows reordered by a permutation, whose backward is the inverse gather: index_select's own
    backward would scatter-add (atomics) where no two rows meet."""

    class Permute(torch.autograd.Function):
        @staticmethod
        def forward(ctx, rows, perm, inverse):
            ctx.save_for_backward(inverse)
            return rows.index_select(0, perm)

        @staticmethod
        def backward(ctx, grad):
            (inverse,) = ctx.saved_tensors
            return grad.index_select(0, inverse), None, None

    return Permute


def router_logits(torch, x, wr):
    """fp32 logits = x wr^T from bf16 x and wr."""
    return router_function(torch).apply(x, wr)


def expert_choice_offsets(torch, e, g, tokens, device):
    """Every expert takes 256/E tokens of each group of 256: T/E tokens, constant offsets."""
    n = e * g
    return (torch.arange(1, n + 1, device=device, dtype=torch.int64) * (tokens // e)).to(torch.int32)


def route(torch, probs, e, g, routing, ec_offs):
    """(token, expert) index tensors of every assignment, sorted by expert then token, the int32
    end offset of each expert, and (token choice) the permutation between token-major and sorted
    order: (sorted index of each token-major assignment, token-major index of each sorted one)."""
    t_count, n = probs.shape
    device = probs.device
    with torch.no_grad():
        if routing == "token_choice":
            experts = probs.topk(g, dim=-1).indices.reshape(-1)  # token-major: t*G + j
            tokens = torch.arange(t_count * g, device=device) // g
        else:
            take = GROUP // e
            idx = probs.view(t_count // GROUP, GROUP, n).topk(take, dim=1).indices  # [groups, take, N]
            base = (torch.arange(t_count // GROUP, device=device) * GROUP).view(-1, 1, 1)
            tokens = (idx + base).reshape(-1)
            experts = torch.arange(n, device=device).view(1, 1, n).expand_as(idx).reshape(-1)
        order = torch.argsort(experts * t_count + tokens)
        tokens, experts = tokens[order], experts[order]
        inverse = None
        if routing == "token_choice":
            # The end of each expert's rows in the sorted list, on the device (no host round trip).
            offs = torch.searchsorted(experts, torch.arange(n, device=device), right=True).to(torch.int32)
            inverse = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=device))
            inverse = (inverse, order)
        else:
            offs = ec_offs
    return tokens, experts, offs, inverse


def combine(torch, weighted, tokens, inverse, t_count, g):
    """y[t] = sum of t's weighted rows, accumulated once in fp32, returned in bf16."""
    d = weighted.shape[1]
    if inverse is not None:  # token choice: exactly G rows a token, gathered in token order
        token_major = permutation_function(torch).apply(weighted, *inverse)
        return token_major.view(t_count, g, d).sum(dim=1, dtype=torch.float32).to(weighted.dtype)
    y = torch.zeros(t_count, d, dtype=torch.float32, device=weighted.device)
    rows = max(1, COMBINE_CHUNK_ELEMENTS // d)
    # split, not slicing: the backward of split joins the chunks' gradients in one concatenation,
    # where each slice's backward would write a zero-filled gradient of the whole tensor.
    for index, chunk in zip(tokens.split(rows), weighted.split(rows)):
        y.index_add_(0, index, chunk.float())
    return y.to(weighted.dtype)


def layer(torch, x, wr, w1, w2, e, g, routing, ec_offs, fixed_route=None):
    """y of the layer; routes itself unless fixed_route (route's result) is given."""
    F = torch.nn.functional
    probs = router_logits(torch, x, wr).softmax(-1)
    n = probs.shape[1]
    r = fixed_route or route(torch, probs, e, g, routing, ec_offs)
    tokens, experts, offs, inverse = r
    scores = probs.reshape(-1).index_select(0, tokens * n + experts)
    xp = x.index_select(0, tokens)
    h = torch._grouped_mm(xp, w1.transpose(1, 2), offs=offs)
    eo = torch._grouped_mm(F.gelu(h, approximate="tanh"), w2.transpose(1, 2), offs=offs)
    weighted = eo * scores.to(eo.dtype)[:, None]  # weighted in bf16
    return combine(torch, weighted, tokens, inverse, x.shape[0], g), r


def layer_fp64(torch, x, wr, w1, w2, fixed_route):
    """The same layer in float64 with a loop over experts (no grouped GEMM), same routing."""
    F = torch.nn.functional
    probs = (x @ wr.t()).softmax(-1)
    tokens, _, offs, _ = fixed_route
    y = torch.zeros_like(x)
    start = 0
    for ex, end in enumerate(offs.tolist()):
        if end > start:
            t = tokens[start:end]
            out = F.gelu(x[t] @ w1[ex].t(), approximate="tanh") @ w2[ex].t()
            y = y.index_add(0, t, out * probs[t, ex][:, None])
        start = end
    return y


def make_inputs(torch, d, e, g, tokens, dtype, device):
    n, f = e * g, 4 * d // g

    def rand(*shape, scale=1.0):
        return ((torch.rand(*shape, device=device) * 2 - 1) * scale).to(dtype).requires_grad_(True)

    # Router weights in +-3/sqrt(d): with x uniform in [-1, 1) a logit's variance is
    # d * (1/3) * (a^2/3) = 1 for a = 3/sqrt(d), so routing is not one-hot (as in wflops' inputs).
    wr = rand(n, d, scale=3.0 / d ** 0.5)
    dy = (torch.rand(tokens, d, device=device) * 2 - 1).to(dtype)
    return rand(tokens, d), wr, rand(n, f, d), rand(n, d, f), dy


def check(torch, routing, device):
    """Relative errors of y and every gradient against float64, on the small configuration."""
    d, e, g, tokens = CHECK
    x, wr, w1, w2, dy = make_inputs(torch, d, e, g, tokens, torch.bfloat16, device)
    ec_offs = expert_choice_offsets(torch, e, g, tokens, device)
    y, fixed = layer(torch, x, wr, w1, w2, e, g, routing, ec_offs)
    y.backward(dy)
    ref_in = [t.detach().double().requires_grad_(True) for t in (x, wr, w1, w2)]
    y_ref = layer_fp64(torch, *ref_in, fixed)
    y_ref.backward(dy.double())
    errors = {"y": wflops_peer.relative_error(y.double(), y_ref)}
    for name, got, ref in zip(("dx", "dwr", "dw1", "dw2"), (x, wr, w1, w2), ref_in):
        errors[name] = wflops_peer.relative_error(got.grad.double(), ref.grad)
    return errors


def run_one(torch, results, args, config, checked, fallback):
    d, e, g, tokens, routing = config
    impl = "torch_grouped_mm_fallback" if fallback else "torch_grouped_mm"
    name = f"moe_step/{impl}/bf16/d:{d}/E:{e}/G:{g}/tok:{tokens}/route:{routing}"
    with results.errors_recorded(name, torch):
        why = config_error(d, e, g, tokens, routing)
        if why:
            raise wflops_peer.PeerError(why)
        if routing not in checked:
            checked[routing] = check(torch, routing, args.device)
        errors = checked[routing]
        message = wflops_peer.failed_checks(errors, TOLERANCE)
        if message:
            raise wflops_peer.VerificationError(message)
        x, wr, w1, w2, dy = make_inputs(torch, d, e, g, tokens, torch.bfloat16, args.device)
        ec_offs = expert_choice_offsets(torch, e, g, tokens, args.device)

        def run():
            for t in (x, wr, w1, w2):
                t.grad = None
            y, _ = layer(torch, x, wr, w1, w2, e, g, routing, ec_offs)
            y.backward(dy)

        note = "; torch._grouped_mm is PyTorch's per-group fallback here (a loop of matmuls after a host " \
               "copy of the offsets)" if fallback else ""
        results.measure(name, "bf16", run, expert_weight_flops(d, tokens), args, bytes_=step_bytes(d, e, g, tokens),
                        counters={"routing_flops": routing_flops(d, e, g, tokens),
                                  "verify_rel_err": max(errors.values())},
                        label=f"PyTorch torch._grouped_mm MoE layer, {e * g} experts of hidden {4 * d // g}, "
                              f"{routing}; bf16 router GEMM with fp32 logits, bf16-weighted combine with one fp32 "
                              f"accumulation{note}", synchronizes=fallback, torch=torch)


def main():
    ap = wflops_peer.new_parser(__doc__, "moe")
    ap.add_argument("--sizes", choices=["quick", "reference", "all"], default="reference",
                    help="quick: d=2048 E=64 T=32768 G=1,8 expert choice; reference: G=1..64 expert choice; "
                         "all: also token choice")
    args = ap.parse_args()
    wflops_peer.validate_common(ap, args)

    torch = wflops_peer.load_torch("moe", args.device)
    if torch is None:
        return 2
    if not hasattr(torch, "_grouped_mm"):
        print("moe_peer: this PyTorch has no torch._grouped_mm", file=sys.stderr)
        return 2
    fallback = grouped_mm_falls_back(torch, args.device)
    results, out = wflops_peer.open_results(args, "moe", {
        "grouped_mm": "PyTorch's per-group fallback (compute capability not 9.x/10.x; a host copy of the offsets "
                      "each call): rows named torch_grouped_mm_fallback, timed without the stream hold"
        if fallback else ("CPU implementation (--device cpu)" if args.device == "cpu" else
                          "CUTLASS grouped GEMM (compute capability 9.x/10.x)"),
        "moe_router": "bf16 GEMM with fp32 output (torch.mm out_dtype=torch.float32), backward in bf16",
        "moe_combine": "bf16 weighting, one fp32 accumulation per token (token choice: sum(dtype=float32) in "
                       "token order; expert choice: index_add_ into fp32 in chunks)"})
    checked = {}
    for config in configs(args.sizes, args.representative, args.device):
        run_one(torch, results, args, config, checked, fallback)
    return wflops_peer.finish(results, out)


if __name__ == "__main__":
    sys.exit(main())
