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
FLOPs from wflops' FLOP model: 6 x 8 d^2 x tokens (expert weight FLOPs); routing FLOPs
d x E x G x 14 x tokens in the counter routing_flops. The router GEMM writes fp32 logits, as
wflops does (TF32 on bf16 values, which TF32 holds exactly); routing decisions are not
differentiated in either.
Before timing, each routing is checked against an fp64 computation on a small configuration.

    python3 scripts/peers/moe_peer.py --out results/pytorch-moe.json \\
        --context-from results/<wflops result>.json --sizes quick
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

GROUP = 256         # expert choice: tokens per group (src/flops_moe.hpp kMoeExpertChoiceGroup)
TOLERANCE = 1e-2    # bf16 (CONVENTIONS.md)
GRANULARITIES = (1, 2, 4, 8, 16, 32, 64)
CHECK = (64, 4, 2, 512)  # d, E, G, T of the fp64 check


def expert_weight_flops(d, tokens):
    return 6.0 * 8.0 * d * d * tokens  # src/flops_moe.cpp moe_expert_weight_flops


def routing_flops(d, e, g, tokens):
    return d * e * g * 14.0 * tokens  # moe_routing_flops


def config_error(d, e, g, tokens, routing):
    """The checks of moe_config_error / moe_expert_choice_error."""
    if (4 * d) % g or (4 * d // g) % 8:
        return f"d_expert = 4d/G = {4 * d}/{g} is not a whole multiple of 8"
    if routing == "expert_choice" and (GROUP % e or tokens % GROUP):
        return "expert choice needs E to divide 256 and T a multiple of 256"
    return ""


def configs(sizes):
    out = []
    gs = (1, 8) if sizes == "quick" else GRANULARITIES
    for g in gs:
        out.append((2048, 64, g, 32768, "expert_choice"))
    if sizes == "all":
        for g in gs:
            out.append((2048, 64, g, 32768, "token_choice"))
    return out


def route(torch, probs, e, g, routing):
    """(token, expert) index tensors of every assignment, sorted by expert then token."""
    t_count, n = probs.shape
    with torch.no_grad():
        if routing == "token_choice":
            experts = probs.topk(g, dim=-1).indices.reshape(-1)
            tokens = torch.arange(t_count, device=probs.device).repeat_interleave(g)
        else:
            take = GROUP // e
            idx = probs.view(t_count // GROUP, GROUP, n).topk(take, dim=1).indices  # [groups, take, N]
            base = (torch.arange(t_count // GROUP, device=probs.device) * GROUP).view(-1, 1, 1)
            tokens = (idx + base).reshape(-1)
            experts = torch.arange(n, device=probs.device).view(1, 1, n).expand_as(idx).reshape(-1)
        order = torch.argsort(experts * t_count + tokens)
        tokens, experts = tokens[order], experts[order]
        counts = torch.bincount(experts, minlength=n)
        offs = torch.cumsum(counts, 0).to(torch.int32)
    return tokens, experts, offs


def layer(torch, x, wr, w1, w2, e, g, routing, fixed_route=None):
    """y of the layer; routes itself unless fixed_route = (tokens, experts, offs) is given."""
    F = torch.nn.functional
    # fp32 logits as wflops writes them: TF32 tensor cores multiply bf16 values exactly.
    probs = (x.float() @ wr.float().t()).softmax(-1)
    tokens, experts, offs = fixed_route or route(torch, probs, e, g, routing)
    scores = probs[tokens, experts]
    xp = x[tokens]
    h = torch._grouped_mm(xp, w1.transpose(1, 2), offs=offs)
    eo = torch._grouped_mm(F.gelu(h, approximate="tanh"), w2.transpose(1, 2), offs=offs)
    weighted = eo.float() * scores[:, None]
    y = torch.zeros(x.shape, dtype=torch.float32, device=x.device).index_add(0, tokens, weighted)
    return y.to(x.dtype), (tokens, experts, offs)


def layer_fp64(torch, x, wr, w1, w2, fixed_route):
    """The same layer in float64 with a loop over experts (no grouped GEMM), same routing."""
    F = torch.nn.functional
    probs = (x @ wr.t()).softmax(-1)
    tokens, experts, offs = fixed_route
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

    def rand(*shape):
        return (torch.rand(*shape, device=device) * 2 - 1).to(dtype).requires_grad_(True)

    return rand(tokens, d), rand(n, d), rand(n, f, d), rand(n, d, f), (torch.rand(tokens, d, device=device) * 2 - 1).to(dtype)


def check(torch, routing, device):
    """Relative errors of y and every gradient against float64, on the small configuration."""
    d, e, g, tokens = CHECK
    x, wr, w1, w2, dy = make_inputs(torch, d, e, g, tokens, torch.bfloat16, device)
    y, fixed = layer(torch, x, wr, w1, w2, e, g, routing)
    y.backward(dy)
    ref_in = [t.detach().double().requires_grad_(True) for t in (x, wr, w1, w2)]
    y_ref = layer_fp64(torch, *ref_in, fixed)
    y_ref.backward(dy.double())
    errors = {"y": wflops_peer.relative_error(y.double(), y_ref)}
    for name, got, ref in zip(("dx", "dwr", "dw1", "dw2"), (x, wr, w1, w2), ref_in):
        errors[name] = wflops_peer.relative_error(got.grad.double(), ref.grad)
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wflops_peer.add_common_arguments(ap, "moe")
    ap.add_argument("--sizes", choices=["quick", "reference", "all"], default="reference",
                    help="quick: d=2048 E=64 T=32768 G=1,8 expert choice; reference: G=1..64 expert choice; "
                         "all: also token choice")
    args = ap.parse_args()

    torch = wflops_peer.cuda_torch("moe")
    if torch is None:
        return 2
    if not hasattr(torch, "_grouped_mm"):
        print("moe_peer: this PyTorch has no torch._grouped_mm", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 router GEMM on bf16 values (exact in TF32)
    device = "cuda"
    results, out = wflops_peer.open_results(args, "moe")
    checked = {}
    for d, e, g, tokens, routing in configs(args.sizes):
        name = f"moe_step/torch_grouped_mm/bf16/d:{d}/E:{e}/G:{g}/tok:{tokens}/route:{routing}"
        why = config_error(d, e, g, tokens, routing)
        if why:
            results.add_error(name, why)
            continue
        with results.errors_recorded(name, torch):
            if routing not in checked:
                checked[routing] = check(torch, routing, device)
            errors = checked[routing]
            bad = {k: v for k, v in errors.items() if not v < TOLERANCE}
            if bad:
                results.add_error(name, f"verification failed: {bad}")
                continue
            x, wr, w1, w2, dy = make_inputs(torch, d, e, g, tokens, torch.bfloat16, device)

            def run():
                for t in (x, wr, w1, w2):
                    t.grad = None
                y, _ = layer(torch, x, wr, w1, w2, e, g, routing)
                y.backward(dy)

            results.measure(name, "bf16", run, expert_weight_flops(d, tokens), args,
                            counters={"routing_flops": routing_flops(d, e, g, tokens),
                                      "verify_rel_err": max(errors.values())},
                            label=f"PyTorch torch._grouped_mm MoE layer, {e * g} experts of hidden {4 * d // g}, "
                                  f"{routing}")
    results.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
