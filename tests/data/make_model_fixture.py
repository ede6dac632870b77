#!/usr/bin/python3
"""Writes tests/data/model_step_h100.json, the hand-made result file of `wflops breakdown`,
`budget --results` and `scripts/plot --kind breakdown` (run it again after changing a value here).

One H100 run at the reference GPT-2 configuration (d 1600, 8 layers, 25 heads, V 50257, 32 x 256
tokens) in bf16: the eager and the fused model step, each split into the phases of docs/model.md
("Phases"), and the standalone benchmarks of the same parts: the matmuls of the model's GEMM
shapes, the attention rows of b 32, h 25, s 256, head dim 64, the bias + GELU MLP step of d 1600,
d_ff 6400, 8192 tokens, a device copy, and the best-matmul shape. A failed GPT-2 small step shows
that failed steps are left out.

The phase times are chosen (round milliseconds, so tests can work shares and rates out by hand);
the FLOPs are the FLOP model's (src/model/flops_model_phases.hpp, restated here only to write the data:
tests/cpu/test_breakdown.cpp checks them against the C++ module); the bytes of the memory-bound
phases are plausible least bytes, written out below. Everything else follows: tflops = flops /
time, phase_gbps = bytes / time, phase_pct = share of the phases' sum.
"""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PEAK_BF16 = 989.0  # H100 SXM dense bf16 (src/model/peaks.cpp)

# ---- the model ----------------------------------------------------------------------------------
D, L, H, V, S, B = 1600, 8, 25, 50257, 256, 32
FF, T, HD = 4 * D, B * S, D // H
E = 2  # bytes of a bf16 activation
# Parameters (`wflops params --arch gpt2`): token table, position table, 12d² + biases + norms per
# block, final norm.
PARAMS = V * D + S * D + L * (12 * D * D + 3 * D + D + FF + D + 4 * D) + 2 * D
assert PARAMS == 326_750_400

# GEMM components: [out, in] weight, applied `per_step` times (flops_model_phases.hpp).
GEMMS = {"qkv": (3 * D, D, L), "out_proj": (D, D, L), "mlp_up": (FF, D, L), "mlp_down": (D, FF, L),
         "lm_head": (V, D, 1)}


def gemm_flops(component, backward):
    out, inp, per_step = GEMMS[component]
    return per_step * (4 if backward else 2) * out * inp * T


def attention_flops(backward):
    fwd = L * 4 * B * H * S * S * HD / 2  # causal halves it
    return 2.5 * fwd if backward else fwd


# Least bytes of the memory-bound phases (eager: one pass per operation).
TD, TF, TV = T * D, T * FF, T * V
BYTES = {
    "fwd_embedding": (2 * TD + S * D) * E,      # read token and position rows, write the sum
    "bwd_embedding": TD * (E + 8),              # read the gradient rows, add them into fp32 rows
    "fwd_norm": (2 * L + 1) * 2 * TD * E,       # 2L + 1 norms: read x, write the normalised x
    "bwd_norm": (2 * L + 1) * 3 * TD * E,       # read x and dy, write dx
    "fwd_residual": 2 * L * 3 * TD * E,         # read both branches, write the sum
    "bwd_residual": 2 * L * 3 * TD * E,         # the gradient add where the branches meet
    "fwd_activation": L * 2 * TF * E,           # GELU: read, write
    "bwd_activation": L * 3 * TF * E,           # read x and dy, write dx
    "fwd_loss": TV * E,                         # read the logits once
    "bwd_loss": 2 * TV * E,                     # read them, write their gradient
    "optimizer": (28 + 6) * PARAMS,             # AdamW on fp32 state (7 fp32 words), the bf16 cast
}
# The fused residual-add + norm kernel: per fused pair read x and the branch, write the sum and
# the normalised sum (4 passes, not 2 + 3); the first block's norm is alone. Backward: read dy, the
# sum and the incoming residual gradient, write dx.
FUSED_BYTES = dict(BYTES, fwd_norm=2 * L * 4 * TD * E + 2 * TD * E, bwd_norm=2 * L * 4 * TD * E + 3 * TD * E)

# Phase times in ms. Eager: cuBLAS GEMMs with separate bias kernels, unfused s x s attention, fp32
# logits in the loss, a per-tensor AdamW. Fused: epilogues, fused residual + norm, cuDNN attention,
# fused softmax + cross-entropy, one multi-tensor AdamW; residual and activation are inside other
# phases (model_phases::fused_into) and absent.
EAGER = {
    "fwd_embedding": 0.05, "fwd_norm": 0.80, "fwd_qkv": 1.70, "fwd_attention": 0.50, "fwd_out_proj": 0.70,
    "fwd_residual": 0.70, "fwd_mlp_up": 2.20, "fwd_activation": 1.20, "fwd_mlp_down": 2.30,
    "fwd_lm_head": 2.40, "fwd_loss": 3.00,
    "bwd_loss": 3.50, "bwd_lm_head": 4.90, "bwd_mlp_down": 4.60, "bwd_activation": 1.80, "bwd_mlp_up": 4.50,
    "bwd_residual": 0.70, "bwd_out_proj": 1.50, "bwd_attention": 1.00, "bwd_qkv": 3.60, "bwd_norm": 1.40,
    "bwd_embedding": 0.25, "optimizer": 7.50,
}
FUSED = {
    "fwd_embedding": 0.05, "fwd_norm": 0.70, "fwd_qkv": 1.55, "fwd_attention": 0.16, "fwd_out_proj": 0.62,
    "fwd_mlp_up": 2.10, "fwd_mlp_down": 2.00, "fwd_lm_head": 2.15, "fwd_loss": 0.45,
    "bwd_loss": 0.65, "bwd_lm_head": 4.30, "bwd_mlp_down": 4.25, "bwd_mlp_up": 3.95, "bwd_out_proj": 1.25,
    "bwd_attention": 0.50, "bwd_qkv": 3.00, "bwd_norm": 0.95, "bwd_embedding": 0.22, "optimizer": 4.00,
}
# The phases are timed apart (events between them): their sum is a little more than the step.
GAP_MS = {"eager": 0.40, "fused": 0.25}

WEIGHT_FLOPS = 6 * (L * 12 * D * D + V * D) * T
ATTN_FLOPS = attention_flops(False) + attention_flops(True)
assert WEIGHT_FLOPS == 16_031_966_822_400 and ATTN_FLOPS == 187_904_819_200


def context():
    c = {
        "date": "2026-11-20T14:00:00+00:00", "host_name": "node1", "executable": "./build/wflops",
        "num_cpus": 64, "mhz_per_cpu": 2000, "cpu_scaling_enabled": False, "caches": [],
        "load_avg": [0.5, 0.4, 0.3], "library_build_type": "release",
        "source": "wflops", "wflops_version": "0.1.0", "wflops_commit": "0123456789ab",
        "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_slug": "h100-sxm", "gpu_index": 0, "pci_bus_id": None,
        "sm_count": 132, "cc": "9.0", "mem_gib": 79.19, "l2_mib": 50.0,
        "sm_clock_max_mhz": 1980, "sm_clock_mhz": 1755, "mem_clock_max_mhz": 2619, "mem_clock_mhz": 2619,
        "power_limit_w": 700, "nvml": True, "driver": "575.57.08", "cuda_driver": "12.9",
        "cuda_runtime": "12.9", "cublas": "12.9.1", "cudnn": "9.10.2", "host": "node1", "suite": "model",
        "l2_policy": "rotate buffers larger than L2", "peak_source": "table", "peak_note": None,
        "peak_clock_mhz": 1830,
    }
    for dtype, v in dict(fp64=67, fp32=67, tf32=495, fp16=989, bf16=PEAK_BF16, fp8=1979, int8=1979).items():
        c["peak_tflops_" + dtype] = v
    c["peak_gbps"] = 3350
    c["interrupted"] = False
    return c


def entry(name, index, seconds, counters):
    return {"name": name, "family_index": index, "per_family_instance_index": 0, "run_name": name,
            "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 20,
            "real_time": seconds * 1e3, "cpu_time": seconds * 1e3, "time_unit": "ms", **counters}


def flops_entry(name, index, flops, tflops, extra=None):
    seconds = flops / (tflops * 1e12)
    c = {"flops": flops, "tflops": tflops, "pct_peak": 100 * tflops / PEAK_BF16, "throttled": 0,
         "power_capped": 1, "clock_ratio": 0.96, "sm_clock_mhz": 1755}
    c.update(extra or {})
    return entry(name, index, seconds, c)


def model_step(impl, index):
    times, byts = (EAGER, BYTES) if impl == "eager" else (FUSED, FUSED_BYTES)
    phased = sum(times.values())
    step_ms = phased - GAP_MS[impl]
    tflops = WEIGHT_FLOPS / (step_ms * 1e9)
    c = {"attn_flops": ATTN_FLOPS, "model_flops": WEIGHT_FLOPS + ATTN_FLOPS,
         "pct_peak_model": 100 * (WEIGHT_FLOPS + ATTN_FLOPS) / (step_ms * 1e9) / PEAK_BF16}
    for phase, ms in times.items():
        c["phase_ms_" + phase] = ms
        c["phase_pct_" + phase] = 100 * ms / phased
        component = phase.split("_", 1)[1] if phase != "optimizer" else phase
        if component in GEMMS:
            c["phase_flops_" + phase] = gemm_flops(component, phase.startswith("bwd"))
        elif component == "attention":
            c["phase_flops_" + phase] = attention_flops(phase.startswith("bwd"))
        else:
            c["phase_bytes_" + phase] = byts[phase]
            c["phase_gbps_" + phase] = byts[phase] / ms / 1e6
    name = f"model_step/{impl}/bf16/arch:gpt2/d:{D}/L:{L}/h:{H}/s:{S}/b:{B}/V:{V}"
    label = "attention: unfused" if impl == "eager" else "attention: cudnn"
    c["label"] = label
    return flops_entry(name, index, WEIGHT_FLOPS, tflops, c)


def matmul(impl, m, n, k, tflops, index):
    return flops_entry(f"matmul/{impl}/bf16/m:{m}/n:{n}/k:{k}", index, 2 * m * n * k, tflops,
                       {"bytes": (m * k + k * n + m * n) * E})


def attention(direction, impl, tflops, index):
    fwd = 4 * B * H * S * S * HD / 2
    flops = 2.5 * fwd if direction == "bwd" else fwd
    return flops_entry(f"attention_{direction}/{impl}/bf16/b:{B}/h:{H}/s:{S}/d:{HD}/causal:1", index, flops, tflops)


def main():
    benches = []

    def add(e):
        benches.append(e)

    i = 0
    for impl, m, n, k, t in [
        ("cublaslt_auto", 8192, 8192, 8192, 770.0),   # the best bf16 matmul of the run
        ("cublaslt_auto", T, 3 * D, D, 700.0),         # qkv
        ("cublas", T, 3 * D, D, 650.0),                # a slower implementation of the same shape
        ("cublaslt_auto", T, D, D, 560.0),             # out_proj
        ("cublaslt_auto", T, FF, D, 720.0),            # mlp_up
        ("cublaslt_auto", T, D, FF, 680.0),            # mlp_down
        ("cublaslt_auto", T, V, D, 640.0),             # lm_head (V odd: no tile multiple)
    ]:
        add(matmul(impl, m, n, k, t, i))
        i += 1
    n = 268435456
    copy_bytes = 2 * n * 4
    add(entry(f"cast/d2d_copy/fp32/n:{n}", i, copy_bytes / 3000e9,
              {"bytes": copy_bytes, "gbps": 3000.0, "pct_peak_bw": 100 * 3000 / 3350}))
    i += 1
    for direction, impl, t in [("fwd", "unfused", 120.0), ("bwd", "unfused", 150.0), ("fwd", "cudnn", 380.0),
                               ("bwd", "cudnn", 300.0), ("fwd", "fused", 330.0), ("bwd", "fused", 260.0)]:
        add(attention(direction, impl, t, i))
        i += 1
    for word, t in [("unfused_gelu", 520.0), ("fused_gelu", 660.0)]:
        add(flops_entry(f"mlp_step/{word}/bf16/d:{D}/ff:{FF}/tok:{T}", i, 12 * D * FF * T, t))
        i += 1
    add(model_step("eager", i))
    add(model_step("fused", i + 1))
    small = "model_step/fused/bf16/arch:gpt2/d:768/L:12/h:12/s:1024/b:16/V:50257"
    add({"name": small, "family_index": i + 2, "per_family_instance_index": 0, "run_name": small,
         "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 0,
         "real_time": 0, "cpu_time": 0, "time_unit": "ms", "error_occurred": True,
         "error_message": "verification failed: loss 13.9 is not near ln V = 10.82"})
    for b in benches:
        for key, value in b.items():
            assert not isinstance(value, float) or math.isfinite(value), (b["name"], key)
    doc = {"context": context(), "benchmarks": benches}
    with open(os.path.join(HERE, "model_step_h100.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
