#!/usr/bin/env python3
"""PyTorch peer of wflops' whole model step (model_step, docs/model.md): Hugging Face transformers'
GPT2LMHeadModel and LlamaForCausalLM, built from a config with random weights (nothing is
downloaded), one full mixed-precision training step per timed call (forward with HF's own loss,
backward, fused AdamW step, zero_grad), written in wflops' result format under the model_step
names so `wflops compare --pair hf_eager=eager --pair hf_compile=fused` sets them beside wflops'.

Implementation words:
  hf_eager    attn_implementation="eager": HF's attention in PyTorch ops (QK^T, mask, softmax, PV)
  hf_sdpa     attn_implementation="sdpa": F.scaled_dot_product_attention (is_causal; PyTorch picks
              the back end)
  hf_compile  the same model (attention --compile-attn, default sdpa) under torch.compile
              (mode --compile-mode, fullgraph=True, dynamic=False, recompile_limit=1 with
              fail_on_recompile_limit_hit: a graph break or a second graph is that row's error)

Precision: fp32 master weights, the step under torch.autocast in bf16 or fp16 (the weights are cast
every step, gradients land in fp32), torch.optim.AdamW(fused=True). fp16 adds torch.amp.GradScaler,
as PyTorch's AMP recipe does for float16: the logits' gradient (about 1/(V T) per entry) is below
fp16's smallest subnormal, so without scaling most of it would flush to zero.

Configurations (wflops' model_step ones, src/model/flops_model.cpp): gpt2 (the reference: d 1600, 8
layers, 25 heads, V 50257, 32 x 256 tokens), gpt2-small (d 768, 12 layers, 12 heads, 16 x 1024),
llama-b1 and llama-b2 (Llama-3-8B's block and head at 2 layers: d 4096, 32 heads, 8 KV heads,
d_ff 14336, V 128256, rope theta 500000, untied head; 1 and 2 x 4096 tokens). Dropout is 0 (wflops'
model has none) and the KV cache off (use_cache=False, training). --representative: gpt2 only.
--device cpu: tiny configurations (d 64, 2 layers, 4 heads, V 512, 2 x 32 tokens), a smoke run.

FLOPs as wflops counts them (src/model/flops_model.hpp): weight FLOPs 6 N_w T (T = b s; N_w = L 12 d^2 + V d
for gpt2, the tied head counted once; llama: L (2 d^2 + 2 d^2 kvh/h + 3 d d_ff) + V d), the family's
tau; attn_flops 7 T s d per layer (causal, backward 2.5x the forward); model_flops the sum, and
pct_peak_model against the dtype's peak. HF's loss predicts b (s - 1) targets (it shifts the labels
inside), but the LM head and the softmax still run on all b s positions, so T = b s holds.

Checked before timing, at the timed shape with the graph that is timed (a compiled graph is
specialised to its shape): one forward + backward whose labels are ignored (-100) outside the first
CHECK_TOKENS positions of the first sequences, so the loss and every gradient come from those
tokens alone (causal attention: a position depends on earlier tokens of its own sequence only);
the loss must be finite and near ln V (+ sigma^2 / 2, sigma^2 = initializer_range^2 d, the logits'
variance at HF's initialisation), every gradient finite, and the loss and the gradients of a few
tensors (embedding / tied head, first QKV, last MLP output, final norm) close to an fp64 copy of
the same model and weights (eager attention) on those tokens: the loss within 1e-2 (fp16/bf16,
docs/conventions.md), the gradients within 1e-2 (fp16) or 3e-2 (bf16; see GRAD_TOLERANCE). Then
one full step must leave every weight finite. Any failure is that row's error.

    python3 scripts/peers/model_peer.py --out results/pytorch-model.json \\
        --context-from results/<wflops result>.json --representative --dtype bf16
"""
import math
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wflops_peer  # noqa: E402

# name -> arch, d, L, h, kvh, d_ff, V, s, b (docs/model.md's table; src/model/flops_model.cpp's presets)
CONFIGS = {
    "gpt2": ("gpt2", 1600, 8, 25, 25, 6400, 50257, 256, 32),
    "gpt2-small": ("gpt2", 768, 12, 12, 12, 3072, 50257, 1024, 16),
    "llama-b1": ("llama", 4096, 2, 32, 8, 14336, 128256, 4096, 1),
    "llama-b2": ("llama", 4096, 2, 32, 8, 14336, 128256, 4096, 2),
}
# --device cpu: one tiny configuration per architecture (llama: 2 KV heads, so GQA is exercised).
CPU_CONFIGS = {
    "gpt2": ("gpt2", 64, 2, 4, 4, 256, 512, 32, 2),
    "llama": ("llama", 64, 2, 4, 2, 176, 512, 32, 2),
}
IMPLEMENTATIONS = ("hf_eager", "hf_sdpa", "hf_compile")
ROPE_THETA = 500000.0  # Llama 3's rotary base (as src/reference/model_reference.hpp)
INIT_RANGE = 0.02      # HF's default initializer_range for both models
CHECK_TOKENS = 512     # tokens whose loss and gradients are checked against fp64
TOLERANCE = 1e-2       # the loss: fp16/bf16 (docs/conventions.md)
# The gradients: a weight's gradient passes through every block's autocast operations, each rounding
# its output (and, backward, its input gradient) to the compute dtype, so it carries many roundings
# where one GEMM's output carries one. Measured against fp64 (CPU, d 64-1024, 2-4 layers): fp16
# 0.5-1.3e-3, bf16 0.4-1.2e-2, whether or not the reference's weights are rounded to bf16 first (so
# the error is the activations', not the weights'). bf16's limit is therefore 3e-2, its 8 bits of
# mantissa against fp16's 11: looser than a GEMM's check, so a bf16 gradient wrong by less than 3%
# passes. fp16's stays 1e-2, which catches fp16 without loss scaling: with V 50257 and 512 checked
# tokens the logits' small gradients flush to zero and the gradients are 2-3e-2 off (measured, CPU).
GRAD_TOLERANCE = {"fp16": 1e-2, "bf16": 3e-2}
LOSS_SLACK = 0.3       # nats allowed between the check's loss and ln V + sigma^2 / 2
LR = 1e-5              # small, so that the weights stay near their initialisation while timed


class Config:
    def __init__(self, arch, d, layers, heads, kv_heads, ffn, vocab, seq, batch):
        self.arch, self.d, self.layers, self.heads, self.kv_heads = arch, d, layers, heads, kv_heads
        self.ffn, self.vocab, self.seq, self.batch = ffn, vocab, seq, batch

    @property
    def tokens(self):
        return self.batch * self.seq

    def name(self, impl, dtype):
        """wflops' model_step name (docs/model.md): a llama name adds kvh: and ff:."""
        keys = f"arch:{self.arch}/d:{self.d}/L:{self.layers}/h:{self.heads}"
        if self.arch == "llama":
            keys += f"/kvh:{self.kv_heads}/ff:{self.ffn}"
        return f"model_step/{impl}/{dtype}/{keys}/s:{self.seq}/b:{self.batch}/V:{self.vocab}"


# ---- FLOPs: the formulas of src/model/flops_model.cpp, one each --------------------------------------
def block_weights(c):
    """One block's matrices: gpt2 4 d^2 (QKV, output) + 2 d d_ff (MLP); llama Q and O d^2 each, K and
    V d * kvh * d/h each, SwiGLU 3 d d_ff (model_block_weights)."""
    if c.arch == "gpt2":
        return 4.0 * c.d * c.d + 2.0 * c.d * c.ffn
    return 2.0 * c.d * c.d + 2.0 * c.d * (c.kv_heads * (c.d / c.heads)) + 3.0 * c.d * c.ffn


def weights(c):
    """N_w: L blocks and the V x d head, counted once whether tied or not (model_weights)."""
    return c.layers * block_weights(c) + float(c.vocab) * c.d


def weight_flops(c):
    """6 N_w T (model_step_weight_flops): 2 forward, 2 input gradient, 2 weight gradient."""
    return 6.0 * weights(c) * c.tokens


def attention_flops(c):
    """Per layer forward 4 (T/s) s^2 d halved by the causal mask, backward 2.5x: 7 T s d
    (model_step_attention_flops); GQA does not change it (every query head scores its keys)."""
    forward = 4.0 * (c.tokens / c.seq) * c.seq * c.seq * c.d * 0.5
    return c.layers * 3.5 * forward


def model_flops(c):
    return weight_flops(c) + attention_flops(c)


def configs(names, device):
    if device == "cpu":
        archs = []
        for n in names:
            arch = CONFIGS[n][0]
            if arch not in archs:
                archs.append(arch)
        return [Config(*CPU_CONFIGS[a]) for a in archs]
    return [Config(*CONFIGS[n]) for n in names]


# ---- the model ---------------------------------------------------------------------------------
def hf_config(transformers, c, attn):
    """A transformers config of c with random initialisation (from_config never downloads)."""
    if c.arch == "gpt2":
        # n_positions = s: the position table wflops' model has (s rows); activation gelu_new is the
        # tanh GELU (GPT2Config's default); dropout 0 everywhere, as wflops' model.
        cfg = transformers.GPT2Config(
            vocab_size=c.vocab, n_positions=c.seq, n_embd=c.d, n_layer=c.layers, n_head=c.heads,
            n_inner=c.ffn, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            initializer_range=INIT_RANGE, use_cache=False, bos_token_id=c.vocab - 1, eos_token_id=c.vocab - 1)
    else:
        cfg = transformers.LlamaConfig(
            vocab_size=c.vocab, hidden_size=c.d, intermediate_size=c.ffn, num_hidden_layers=c.layers,
            num_attention_heads=c.heads, num_key_value_heads=c.kv_heads, max_position_embeddings=c.seq,
            rope_theta=ROPE_THETA, rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False,
            mlp_bias=False, attention_dropout=0.0, initializer_range=INIT_RANGE, use_cache=False,
            bos_token_id=0, eos_token_id=0)
    return cfg


def build(torch, transformers, c, attn, device):
    """The model in fp32 (the master weights), built on the device: AutoModelForCausalLM.from_config
    with attn_implementation (HF docs, "Attention interface")."""
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(hf_config(transformers, c, attn),
                                                              attn_implementation=attn)
    # HF's causal-LM loss by name: it is what HF falls back to for GPT2LMHeadModel too, which it
    # cannot tell from the class name and warns about.
    model.loss_type = "ForCausalLM"
    return model.to(device).train()


def check_parameters(c):
    """Tensors whose gradients are compared with fp64: the token embedding (tied to the head in gpt2),
    the first block's query / QKV projection, the last block's MLP output, the final norm."""
    last = c.layers - 1
    if c.arch == "gpt2":
        return ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
                f"transformer.h.{last}.mlp.c_proj.weight", "transformer.ln_f.weight"]
    return ["model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight", f"model.layers.{last}.mlp.down_proj.weight",
            "model.norm.weight"]


def check_labels(torch, ids, c):
    """Labels that count only the first positions of the first sequences (HF ignores -100,
    CrossEntropyLoss's default ignore_index), and the (sequences, positions) they cover."""
    m = min(c.seq, CHECK_TOKENS)
    k = min(c.batch, max(1, CHECK_TOKENS // m))
    labels = torch.full_like(ids, -100)
    labels[:k, :m] = ids[:k, :m]
    return labels, k, m


def expected_loss(c):
    """ln V + sigma^2 / 2: the mean log-sum-exp of V logits N(0, sigma^2) less the target's (mean 0);
    the last norm gives each token's vector a squared length of d (gain 1), the head's weights are
    N(0, initializer_range^2), so sigma^2 = initializer_range^2 d."""
    return math.log(c.vocab) + INIT_RANGE ** 2 * c.d / 2.0


def check(torch, transformers, c, model, forward, scaler, dtype, device):
    """Relative errors (loss and the gradients of check_parameters) of one forward + backward of the
    timed `forward` against fp64, on the tokens check_labels keeps; raises VerificationError on a
    loss far from ln V, a parameter without a gradient or a non-finite gradient."""
    ids = torch.randint(0, c.vocab, (c.batch, c.seq), device=device)
    labels, k, m = check_labels(torch, ids, c)
    model.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=dtype):
        loss = forward(input_ids=ids, labels=labels).loss
    (scaler.scale(loss) if scaler is not None else loss).backward()
    scale = scaler.get_scale() if scaler is not None else 1.0
    value, want = loss.item(), expected_loss(c)
    if not (math.isfinite(value) and abs(value - want) < LOSS_SLACK):
        raise wflops_peer.VerificationError(f"verification failed: loss {value:.4g}, expected about {want:.4g} "
                                            f"(ln V + sigma^2/2) at random initialisation")
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.grad is None]
    if missing:
        raise wflops_peer.VerificationError(f"verification failed: no gradient for {', '.join(missing[:3])}")
    bad = [n for n, p in params.items() if not bool(torch.isfinite(p.grad).all())]
    if bad:
        raise wflops_peer.VerificationError(f"verification failed: non-finite gradients in {', '.join(bad[:3])}")
    # The fp64 copy: the same weights (the fp32 masters), eager attention, no autocast. Its loss is
    # taken from the fp64 logits here, as HF's loss would compute it (shifted, mean over the labels
    # that are not -100) but without its cast of the logits to fp32. (HF's Llama still computes its
    # RMSNorm and eager softmax in fp32: about 1e-7 of the reference's error. GPT-2's fp64 copy and
    # wflops' fp64 reference agree to 1e-15, tests/scripts/test_peers_cpu.py.)
    ref = build(torch, transformers, c, "eager", device).to(torch.float64)
    ref.load_state_dict(model.state_dict())
    logits64 = ref(input_ids=ids[:k, :m]).logits
    loss64 = torch.nn.functional.cross_entropy(logits64[:, :-1].reshape(-1, c.vocab),
                                               labels[:k, 1:m].reshape(-1), ignore_index=-100)
    loss64.backward()
    ref_params = dict(ref.named_parameters())
    errors = {"loss": abs(value - loss64.item()) / abs(loss64.item())}
    for n in check_parameters(c):
        errors["d" + n] = wflops_peer.relative_error(params[n].grad / scale, ref_params[n].grad)
    del ref, ref_params, loss64, logits64
    model.zero_grad(set_to_none=True)
    return errors


def synchronises(torch, step, device):
    """Whether one step waits for the host (torch.cuda.set_sync_debug_mode("warn") reports every
    synchronising CUDA call as a warning): such a step cannot be held back behind the spin."""
    if device != "cuda":
        return False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
    return any("synchroniz" in str(w.message) for w in caught)


def run_one(torch, transformers, results, args, c, impl, dname, dtype):
    device = args.device
    name = c.name(impl, dname)
    attn = {"hf_eager": "eager", "hf_sdpa": "sdpa"}.get(impl, args.compile_attn)
    with results.errors_recorded(name, torch):
        model = build(torch, transformers, c, attn, device)
        forward = model
        if impl == "hf_compile":
            # One fresh graph per configuration, for exactly its shape (dynamic=False), in one piece
            # (fullgraph=True); the check runs the graph that is timed, so a second graph would be an
            # unchecked one: recompiling past the limit of 1 raises instead of running eagerly.
            forward = wflops_peer.compile_one_graph(torch, model, args.compile_mode)
        # fp32 masters, fused AdamW (one multi-tensor kernel; torch.optim.AdamW's fused=True), and for
        # fp16 a GradScaler: with a fused optimizer its step and update stay on the device (it hands
        # the optimizer the scale and the inf flag; torch.amp.GradScaler), so the step needs no host
        # round trip.
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR, fused=True)
        scaler = torch.amp.GradScaler(device) if dname == "fp16" else None
        errors = check(torch, transformers, c, model, forward, scaler, dtype, device)
        message = wflops_peer.failed_checks({"loss": errors["loss"]}, TOLERANCE) or wflops_peer.failed_checks(
            {k: v for k, v in errors.items() if k != "loss"}, GRAD_TOLERANCE[dname])
        if message:
            raise wflops_peer.VerificationError(message)
        ids = torch.randint(0, c.vocab, (c.batch, c.seq), device=device)
        # The labels are the ids (HF shifts them), in a tensor of their own as in the check: the
        # compiled graph is specialised to distinct input and label tensors.
        labels = ids.clone()

        def step():
            with torch.autocast(device, dtype=dtype):
                loss = forward(input_ids=ids, labels=labels).loss
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()
        bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise wflops_peer.VerificationError(f"verification failed: non-finite weights after a step "
                                                f"({', '.join(bad[:3])})")
        sync = synchronises(torch, step, device)
        how = f"attn_implementation={attn}"
        if impl == "hf_compile":
            how += ", " + wflops_peer.compile_label(args.compile_mode)
        else:
            how += ", eager"
        how += f", autocast {dname} on fp32 masters, fused AdamW" + (", GradScaler" if scaler else "")
        if sync:
            how += ", the step synchronises with the host"
        counters = {"verify_rel_err": max(errors.values()), "attn_flops": attention_flops(c),
                    "model_flops": model_flops(c)}
        peak = results.peak(dname)
        if peak:  # a function of each repetition's seconds per step (wflops_peer.PeerResults.add)
            counters["pct_peak_model"] = lambda t: 100.0 * model_flops(c) / t / 1e12 / peak
        arch = "GPT2LMHeadModel" if c.arch == "gpt2" else "LlamaForCausalLM"
        results.measure(name, dname, step, weight_flops(c), args, counters=counters, synchronizes=sync,
                        label=f"HF transformers {arch} {impl} b={c.batch} s={c.seq} ({how})", torch=torch)
    if impl == "hf_compile":
        torch._dynamo.reset()


def main():
    ap = wflops_peer.new_parser(__doc__, "model")
    ap.add_argument("--configs", help="comma-separated (default all; --representative: gpt2): " + ",".join(CONFIGS))
    ap.add_argument("--dtype", choices=["bf16", "fp16"], action="append",
                    help="repeatable (default bf16); both keep fp32 master weights, fp16 adds a GradScaler")
    ap.add_argument("--impls", help="comma-separated (default all): " + ",".join(IMPLEMENTATIONS))
    wflops_peer.add_compile_arguments(ap, "hf_compile", "leave out hf_compile")
    ap.add_argument("--compile-attn", choices=["sdpa", "eager"], default="sdpa",
                    help="the attn_implementation hf_compile compiles (default sdpa)")
    args = ap.parse_args()
    wflops_peer.validate_common(ap, args)
    names = [n for n in (args.configs or ("gpt2" if args.representative else ",".join(CONFIGS))).split(",") if n]
    impls = [i for i in (args.impls or ",".join(IMPLEMENTATIONS)).split(",") if i]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown configuration {n} (known: {', '.join(CONFIGS)})")
    for i in impls:
        if i not in IMPLEMENTATIONS:
            ap.error(f"unknown implementation {i} (known: {', '.join(IMPLEMENTATIONS)})")
    if args.no_compile:
        impls = [i for i in impls if i != "hf_compile"]
    if not names or not impls:
        ap.error("--configs or --impls names none")

    torch = wflops_peer.load_torch("model", args.device)
    if torch is None:
        return 2
    try:
        import transformers
    except ImportError as e:
        print(f"model_peer: Hugging Face transformers is not installed: {e}", file=sys.stderr)
        return 2
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    compile_mode, graphs = args.compile_mode, wflops_peer.compile_options(args.compile_mode)[1]
    results, out = wflops_peer.open_results(args, "model", {
        "transformers": transformers.__version__,
        "models": "GPT2LMHeadModel, LlamaForCausalLM from AutoModelForCausalLM.from_config: HF's random "
                  f"initialisation (initializer_range {INIT_RANGE}), nothing downloaded; dropout 0, "
                  "use_cache=False, gpt2 n_positions = s, gelu_new; llama rope_theta 500000, untied head",
        "attention": "hf_eager: attn_implementation=eager; hf_sdpa: sdpa (F.scaled_dot_product_attention, "
                     f"is_causal, back end chosen by PyTorch); hf_compile: {args.compile_attn} under torch.compile",
        "torch_compile": "none (--no-compile)" if "hf_compile" not in impls else
        f"torch.compile(model, mode={compile_mode}, fullgraph=True, dynamic=False) of the HF module (forward and "
        "loss; the backward by AOTAutograd), torch._dynamo.reset() before each configuration, recompile_limit=1 "
        "with fail_on_recompile_limit_hit=True; the optimizer step eager",
        "cuda_graphs": False if "hf_compile" not in impls else graphs,
        "mixed_precision": "torch.autocast (bf16 or fp16) on fp32 master weights, gradients in fp32; fp16 with "
                           "torch.amp.GradScaler (initial scale 2^16)",
        "optimizer": f"torch.optim.AdamW(fused=True, lr={LR:g}, weight_decay 0.01), "
                     "zero_grad(set_to_none=True)",
        "step": "forward with HF's loss (labels=input_ids, shifted inside: b (s-1) targets, logits upcast to fp32), "
                "backward, optimizer step, zero_grad: one call; random token ids, the same every step",
        "flops": "weight FLOPs 6 N_w b s (src/model/flops_model.hpp; the tied gpt2 head once); attn_flops causal, "
                 "backward 2.5x forward; model_flops the sum"})
    for c in configs(names, args.device):
        for dname in args.dtype or ["bf16"]:
            for impl in impls:
                run_one(torch, transformers, results, args, c, impl, dname, dtypes[dname])
    return wflops_peer.finish(results, out)


if __name__ == "__main__":
    sys.exit(main())
