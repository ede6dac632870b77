#!/usr/bin/python3
"""Writes the hand-made result files of tests/data (run it again after changing a value here).

The values are chosen so that tests can check results by hand: e.g. A100 4096x8192x4096 bf16
repetitions 250, 252, 248 TFLOP/s (median 250, sample stddev 2); the cluster's node3 is ~15%
slower than the others. They imitate what `wflops run` writes: Google Benchmark's JSON with
wflops' context keys and counters (docs/result-format.md).
"""
import json
import math
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))

GPUS = {
    "a100": dict(gpu_name="NVIDIA A100-SXM4-80GB", gpu_slug="a100-sxm4-80gb", sm_count=108, cc="8.0",
                 mem_gib=79.25, sm_clock_max_mhz=1410, mem_clock_max_mhz=1593, power_limit_w=400,
                 peaks=dict(fp64=19.5, fp32=19.5, tf32=156, fp16=312, bf16=312, fp8=None, int8=624),
                 peak_gbps=2039),
    "h100": dict(gpu_name="NVIDIA H100 80GB HBM3", gpu_slug="h100-sxm", sm_count=132, cc="9.0",
                 mem_gib=79.19, sm_clock_max_mhz=1980, mem_clock_max_mhz=2619, power_limit_w=700,
                 peaks=dict(fp64=67, fp32=67, tf32=495, fp16=989, bf16=989, fp8=1979, int8=1979),
                 peak_gbps=3350),
}


def context(gpu, host, index=0, cublas="12.9.1", driver="575.57.08", runtime="12.9", commit="0123456789ab"):
    g = GPUS[gpu]
    c = {
        "date": "2025-09-01T10:00:00+00:00", "host_name": host, "executable": "./build/wflops",
        "num_cpus": 64, "mhz_per_cpu": 2000, "cpu_scaling_enabled": False, "caches": [],
        "load_avg": [0.5, 0.4, 0.3], "library_build_type": "release",
        "source": "wflops", "wflops_version": "0.1.0", "wflops_commit": commit,
        "gpu_name": g["gpu_name"], "gpu_slug": g["gpu_slug"], "gpu_index": index, "pci_bus_id": None,
        "sm_count": g["sm_count"], "cc": g["cc"], "mem_gib": g["mem_gib"], "l2_mib": 50.0,
        "sm_clock_max_mhz": g["sm_clock_max_mhz"], "sm_clock_mhz": 1755,
        "mem_clock_max_mhz": g["mem_clock_max_mhz"], "mem_clock_mhz": g["mem_clock_max_mhz"],
        "power_limit_w": g["power_limit_w"], "nvml": True, "driver": driver, "cuda_driver": "12.9",
        "cuda_runtime": runtime, "cublas": cublas, "cudnn": None, "host": host, "suite": "quick",
        "l2_policy": "rotate buffers larger than L2", "peak_source": "table", "peak_note": None,
    }
    for dtype, v in g["peaks"].items():
        c["peak_tflops_" + dtype] = v
    c["peak_gbps"] = g["peak_gbps"]
    c["interrupted"] = False
    return c


def dims(name):
    out = {}
    for part in name.split("/")[3:]:
        k, _, v = part.partition(":")
        try:
            out[k] = float(v)
        except ValueError:  # route:expert_choice
            pass
    return out


def counters(name, tflops, peak):
    """flops, bytes and the derived counters of one run of `name` at `tflops`."""
    fam = name.split("/")[0]
    dt = name.split("/")[2]
    d = dims(name)
    if fam == "matmul":
        flops = 2 * d["m"] * d["n"] * d["k"]
        elem = 4 if dt in ("tf32", "fp32") else (1 if dt == "fp8" else 2)
        byts = (d["m"] * d["k"] + d["k"] * d["n"] + d["m"] * d["n"]) * elem
    elif fam == "mlp_step":
        flops = 6 * 2 * d["d"] * d["ff"] * d["tok"]
        byts = 2 * (2 * d["d"] * d["ff"] + 4 * d["tok"] * d["d"] + 2 * d["tok"] * d["ff"])
    elif fam == "moe_step":
        flops = 6 * 8 * d["d"] ** 2 * d["tok"]  # expert weight FLOPs (CONVENTIONS.md)
        byts = 2 * (8 * d["d"] ** 2 * d["E"] + 6 * d["tok"] * d["d"])
    else:
        raise ValueError(name)
    seconds = flops / (tflops * 1e12)
    c = {"flops": flops, "tflops": tflops, "pct_peak": 100 * tflops / peak if peak else None,
         "bytes": byts, "gbps": byts / seconds / 1e9, "throttled": 0, "sm_clock_mhz": 1755}
    if fam == "moe_step":
        c["routing_flops"] = d["d"] * d["E"] * d["G"] * 14 * d["tok"]
    return {k: v for k, v in c.items() if v is not None}, seconds


def entries(name, reps, peak, family_index):
    """Google Benchmark entries of one benchmark: its repetitions, then mean/median/stddev/cv."""
    out = []
    base = {"family_index": family_index, "per_family_instance_index": 0, "run_name": name,
            "repetitions": len(reps), "threads": 1}
    runs = []
    for i, t in enumerate(reps):
        c, sec = counters(name, t, peak)
        e = dict(name=name, **base, run_type="iteration", repetition_index=i, iterations=20,
                 real_time=sec * 1e3, cpu_time=sec * 1e3, time_unit="ms", **c)
        out.append(e)
        runs.append(e)
    if len(reps) > 1:
        keys = [k for k in runs[0] if k in ("flops", "tflops", "pct_peak", "bytes", "gbps", "throttled",
                                             "sm_clock_mhz", "routing_flops", "real_time", "cpu_time")]
        for agg in ("mean", "median", "stddev", "cv"):
            e = dict(name=f"{name}_{agg}", **base, run_type="aggregate", aggregate_name=agg,
                     aggregate_unit="percentage" if agg == "cv" else "time", iterations=len(reps),
                     time_unit="ms")
            for k in keys:
                v = [r[k] for r in runs]
                m = statistics.mean(v)
                if agg == "mean":
                    e[k] = m
                elif agg == "median":
                    e[k] = statistics.median(v)
                elif agg == "stddev":
                    e[k] = statistics.stdev(v)
                else:
                    e[k] = statistics.stdev(v) / m if m else 0.0
            out.append(e)
    return out


def failed(name, family_index, message):
    return {"name": name, "family_index": family_index, "per_family_instance_index": 0, "run_name": name,
            "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 0,
            "real_time": 0, "cpu_time": 0, "time_unit": "ms", "error_occurred": True, "error_message": message}


def peak_of(gpu, name):
    return GPUS[gpu]["peaks"][name.split("/")[2]]


def document(gpu, ctx, benchmarks):
    docs = []
    for i, (name, reps) in enumerate(benchmarks):
        if isinstance(reps, str):
            docs.append(failed(name, i, reps))
        else:
            docs.extend(entries(name, reps, peak_of(gpu, name), i))
    return {"context": ctx, "benchmarks": docs}


def write(path, doc):
    with open(os.path.join(HERE, path), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


MM1 = "matmul/cublaslt_auto/bf16/m:4096/n:8192/k:4096"
MM2 = "matmul/cublaslt_auto/bf16/m:8192/n:8192/k:8192"
MM3 = "matmul/cublaslt_auto/tf32/m:8192/n:8192/k:8192"
FP8 = "matmul/cublaslt_auto/fp8/m:8192/n:8192/k:8192"
WMMA = "matmul/wmma/bf16/m:4096/n:4096/k:4096"
MLP = "mlp_step/fused_gelu_residual/bf16/d:1600/ff:6400/tok:8192"

write("a100.json", document("a100", context("a100", "dgx-a1", cublas="12.4.5", driver="550.90.07", runtime="12.4"), [
    (MM1, [250, 252, 248]),            # median 250, stddev 2
    (MM2, [270, 271, 269]),            # median 270, stddev 1
    (MM3, [140]),                      # single run: no spread
    (MLP, [185.7]),                    # only in this file
    (WMMA, "verification failed: relative error 3.1e-01 > 1e-02"),
]))
write("h100.json", document("h100", context("h100", "node1"), [
    (MM1, [700, 710, 690]),            # median 700, stddev 10: 2.8x, beyond noise
    (MM2, [760, 770, 780]),            # median 770, stddev 10
    (MM3, [400]),                      # 400 / 140 = 2.857..., no spread: unknown
    (FP8, [1300]),                     # only in this file
    (WMMA, [300]),                     # failed in the A100 file: no ratio
]))

# One node of a cluster per file, H100, same benchmarks; node3 is slow (~15% below the median).
CLUSTER = {
    "node1": ([700, 705, 695], [770, 772, 768], [600, 602, 598]),
    "node2": ([705, 710, 700], [775, 777, 773], [590, 592, 588]),
    "node3": ([595, 600, 590], [650, 652, 648], [520, 522, 518]),
    "node4": ([698, 703, 693], [768, 770, 766], [605, 607, 603]),
}
MM4 = "matmul/cublaslt_auto/bf16/m:2048/n:2048/k:2048"
for host, (a, b, c) in CLUSTER.items():
    write(f"cluster/{host}-gpu0.json", document("h100", context("h100", host), [(MM1, a), (MM2, b), (MM4, c)]))

# MoE step over granularity plus the dense MLP step baseline, for `wflops plan --results`.
moe = [("mlp_step/fused_gelu_residual/bf16/d:2048/ff:8192/tok:32768", [600]),
       ("mlp_step/fused_gelu_residual/bf16/d:1024/ff:4096/tok:32768", [500])]
for g, t in [(1, 580), (2, 560), (4, 520), (8, 450), (16, 360), (32, 250), (64, 150)]:
    moe.append((f"moe_step/grouped/bf16/d:2048/E:64/G:{g}/tok:32768/route:expert_choice", [t]))
moe.append(("moe_step/grouped/bf16/d:2048/E:8/G:1/tok:32768/route:expert_choice", [999]))  # other E: ignored
moe.append(("moe_step/grouped/bf16/d:2048/E:64/G:128/tok:32768/route:expert_choice", "out of memory"))
write("moe_h100.json", document("h100", context("h100", "node1"), moe))
