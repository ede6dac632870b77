#!/usr/bin/python3
"""Writes the hand-made result files of tests/data (run it again after changing a value here).

The values are chosen so that tests can check results by hand: e.g. A100 4096x8192x4096 bf16
repetitions 250, 252, 248 TFLOP/s (median 250, sample stddev 2); the cluster's node3 is ~15%
slower than the others. They imitate what `wflops run` writes: Google Benchmark's JSON with
wflops' context keys, the counters the harness and the reporter add (docs/result-format.md) and
the summary block. pct_peak is against the peak of the benchmark's own dtype; pct_best_gemm against
the fastest matmul of its dtype earlier in the same file; pct_baseline against the benchmark it is
read against, when that is in the file.
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
                 peak_gbps=2039, peak_clock_mhz=1410, sm_clock_mhz=1395, l2_mib=40.0, watts=380),
    "h100": dict(gpu_name="NVIDIA H100 80GB HBM3", gpu_slug="h100-sxm", sm_count=132, cc="9.0",
                 mem_gib=79.19, sm_clock_max_mhz=1980, mem_clock_max_mhz=2619, power_limit_w=700,
                 peaks=dict(fp64=67, fp32=67, tf32=495, fp16=989, bf16=989, fp8=1979, int8=1979),
                 peak_gbps=3350, peak_clock_mhz=1830, sm_clock_mhz=1755, l2_mib=50.0, watts=550),
}


def context(gpu, host, index=0, cublas="12.9.1", driver="575.57.08", runtime="12.9", commit="0123456789ab"):
    g = GPUS[gpu]
    c = {
        "date": "2025-09-01T10:00:00+00:00", "host_name": host, "executable": "./build/wflops",
        "num_cpus": 64, "mhz_per_cpu": 2000, "cpu_scaling_enabled": False, "caches": [],
        "load_avg": [0.5, 0.4, 0.3], "library_build_type": "release",
        "source": "wflops", "wflops_version": "0.1.0", "wflops_commit": commit,
        "gpu_name": g["gpu_name"], "gpu_slug": g["gpu_slug"], "gpu_index": index, "pci_bus_id": None,
        "sm_count": g["sm_count"], "cc": g["cc"], "mem_gib": g["mem_gib"], "l2_mib": g["l2_mib"],
        "sm_clock_max_mhz": g["sm_clock_max_mhz"], "sm_clock_mhz": g["sm_clock_mhz"],
        "mem_clock_max_mhz": g["mem_clock_max_mhz"], "mem_clock_mhz": g["mem_clock_max_mhz"],
        "power_limit_w": g["power_limit_w"], "nvml": True, "energy_counter": True, "driver": driver,
        "cuda_driver": "12.9",
        "cuda_runtime": runtime, "cublas": cublas, "cudnn": None, "host": host, "suite": "quick",
        "l2_policy": "rotate buffers larger than L2", "peak_source": "table", "peak_note": None,
    }
    for dtype, v in g["peaks"].items():
        c["peak_tflops_" + dtype] = v
    c["peak_gbps"] = g["peak_gbps"]
    c["peak_clock_mhz"] = g["peak_clock_mhz"]
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


# What the harness measures besides the time, per dtype: the verification's relative error (within
# the dtype's tolerance, src/dtype.cpp).
VERIFY_REL_ERR = dict(fp32=1.2e-6, tf32=2.4e-4, fp16=4.1e-4, bf16=3.1e-3, fp8=2.2e-2)
# Stream operations one launch enqueues (graph nodes counted by capture).
STREAM_OPS = dict(matmul=1, mlp_step=14, moe_step=42, attention_fwd=1, attention_bwd=3)
# The time split of a step (phase_pct_<part>), as the harness records it part by part.
PHASES = dict(mlp_step=dict(gemm=91.0, elementwise=9.0),
              moe_step=dict(router=2.0, routing=3.0, permute=4.0, expert_gemm=55.0, combine=3.0, backward=33.0))


def counters(gpu, name, tflops, peak):
    """flops, bytes and the counters of one run of `name` at `tflops` on `gpu`, as the harness
    writes them (pct_best_gemm and pct_baseline come from the reporter: see document())."""
    g = GPUS[gpu]
    fam = name.split("/")[0]
    impl = name.split("/")[1]
    dt = name.split("/")[2]
    d = dims(name)
    extra = {}
    if fam == "matmul":
        flops = 2 * d["m"] * d["n"] * d["k"]
        elem = 4 if dt in ("tf32", "fp32") else (1 if dt == "fp8" else 2)
        out_elem = 2 if dt == "fp8" else elem  # fp8 writes bf16
        byts = (d["m"] * d["k"] + d["k"] * d["n"]) * elem + d["m"] * d["n"] * out_elem
        if impl.startswith("cublaslt_auto"):
            extra.update(algo_index=0, algo_candidates=8)
    elif fam == "mlp_step":
        flops = 6 * 2 * d["d"] * d["ff"] * d["tok"]
        byts = 2 * (2 * d["d"] * d["ff"] + 4 * d["tok"] * d["d"] + 2 * d["tok"] * d["ff"])
    elif fam == "moe_step":
        flops = 6 * 8 * d["d"] ** 2 * d["tok"]  # expert weight FLOPs (docs/conventions.md)
        byts = 2 * (8 * d["d"] ** 2 * d["E"] + 6 * d["tok"] * d["d"])
        extra.update(routing_flops=d["d"] * d["E"] * d["G"] * 14 * d["tok"], load_imbalance=1.0,
                     max_expert_tokens=d["tok"] / d["E"])
    elif fam in ("attention_fwd", "attention_bwd"):
        b, h, sq, hd = d["b"], d["h"], d["s"], d["d"]
        fwd = 4 * b * h * sq * sq * hd / (2 if d["causal"] else 1)
        flops = fwd * (2.5 if fam == "attention_bwd" else 1)
        qkvo = 4 * b * h * sq * hd * 2
        byts = qkvo * (2.25 if fam == "attention_bwd" else 1)  # the backward also reads dO, writes dQ dK dV
        # Real matmul FLOPs: the fused kernels skip masked tiles (of 128) but compute the diagonal
        # ones whole; the unfused path multiplies every score.
        tiles = sq / 128
        real = flops * (1 if not d["causal"] else ((tiles + 1) / tiles if impl == "fused" else 2))
        scores = b * h * sq * sq * 2 if impl == "unfused" else 0
        extra.update(attn_flops=flops, matmul_flops=real, mem_bytes=qkvo + scores)
    else:
        raise ValueError(name)
    seconds = flops / (tflops * 1e12)
    # An H100 runs its large GEMMs at the software power cap (reason 0x4), which is not throttling.
    power_capped = 1 if gpu == "h100" and fam == "matmul" and flops >= 1e12 else 0
    watts = g["watts"] + (140 if power_capped else 0)
    joules = watts * seconds / 0.95  # the gaps between timed batches count: busy 95% of the span
    batch = max(1, min(4096, round(1e-3 / seconds)))
    c = {"flops": flops, "tflops": tflops, "pct_peak": 100 * tflops / peak if peak else None,
         "bytes": byts, "gbps": byts / seconds / 1e9, "pct_peak_bw": 100 * byts / seconds / 1e9 / g["peak_gbps"],
         **extra,
         "blocked": 1, "stream_ops": STREAM_OPS[fam],
         "l2_rotation": max(1, min(64, math.ceil(4 * g["l2_mib"] * 2 ** 20 / byts))), "batch": batch,
         "verify_rel_err": VERIFY_REL_ERR[dt],
         "throttled": 0, "power_capped": power_capped, "clock_ratio": g["sm_clock_mhz"] / g["peak_clock_mhz"],
         "sm_clock_mhz": g["sm_clock_mhz"], "throttle_reasons": 4 if power_capped else 0,
         "watts": watts, "joules": joules, "tflop_per_joule": flops / joules / 1e12}
    for part, pct in PHASES.get(fam, {}).items():
        c["phase_ms_" + part] = seconds * 1e3 * pct / 100
        c["phase_pct_" + part] = pct
    return {k: v for k, v in c.items() if v is not None}, seconds


def entries(gpu, name, reps, peak, family_index, relative):
    """Google Benchmark entries of one benchmark: its repetitions, then mean/median/stddev/cv.
    `relative`: the median tau of the matmul (pct_best_gemm) and of the baseline (pct_baseline) it is
    read against, when measured; None otherwise."""
    out = []
    base = {"family_index": family_index, "per_family_instance_index": 0, "run_name": name,
            "repetitions": len(reps), "threads": 1}
    runs = []
    for i, t in enumerate(reps):
        c, sec = counters(gpu, name, t, peak)
        for key, ref in relative.items():
            if ref:
                c[key] = 100 * t / ref
        e = dict(name=name, **base, run_type="iteration", repetition_index=i, iterations=20,
                 real_time=sec * 1e3, cpu_time=sec * 1e3, time_unit="ms", **c)
        out.append(e)
        runs.append(e)
    if len(reps) > 1:
        # Google Benchmark aggregates every counter (and the times); the run's own fields stay out.
        fields = ("name", "family_index", "per_family_instance_index", "run_name", "repetitions", "threads",
                  "run_type", "repetition_index", "iterations", "time_unit")
        keys = [k for k in runs[0] if k not in fields]
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


def median_tau(reps):
    return statistics.median(reps)


def document(gpu, ctx, benchmarks, baselines=None):
    """A result document of `benchmarks` [(name, repetitions or an error message)], in order;
    `baselines`: name -> the name it is read against (pct_baseline)."""
    baselines = baselines or {}
    docs = []
    best_gemm = {}  # dtype -> fastest matmul median so far (pct_best_gemm is read against it)
    measured = {}   # name -> median tau
    for i, (name, reps) in enumerate(benchmarks):
        if isinstance(reps, str):
            docs.append(failed(name, i, reps))
            continue
        fam, dt = name.split("/")[0], name.split("/")[2]
        relative = {"pct_best_gemm": best_gemm.get(dt) if fam != "matmul" else None,
                    "pct_baseline": measured.get(baselines.get(name))}
        docs.extend(entries(gpu, name, reps, peak_of(gpu, name), i, relative))
        measured[name] = median_tau(reps)
        if fam == "matmul":
            best_gemm[dt] = max(best_gemm.get(dt, 0), measured[name])
    return {"context": ctx, "benchmarks": docs, "summary": summary(docs)}


def summary(docs):
    """The summary block the writer adds (docs/result-format.md): matmul_max_tflops per dtype, and
    moe_tau_by_granularity, the fastest implementation per configuration and G."""
    out = {}
    best = {}
    curves = {}
    for e in docs:
        if e.get("error_occurred"):
            continue
        if e["run_type"] == "aggregate" and e["aggregate_name"] != "median":
            continue
        if e["run_type"] == "iteration" and e["repetitions"] > 1:
            continue
        name = e["run_name"]
        fam, _, dt = name.split("/")[:3]
        if fam == "matmul" and (dt not in best or best[dt]["tflops"] < e["tflops"]):
            best[dt] = {"tflops": e["tflops"], "benchmark": name}
        if fam == "moe_step":
            parts = name.split("/")[3:]
            g = float(next(p for p in parts if p.startswith("G:"))[2:])
            config = "/".join([dt] + [p for p in parts if not p.startswith("G:")])
            point = curves.setdefault(config, {}).get(g)
            if point is None or point["tflops"] < e["tflops"]:
                point = {"G": g, "tflops": e["tflops"], "benchmark": name}
                if "pct_baseline" in e:
                    point["pct_baseline"] = e["pct_baseline"]
                curves[config][g] = point
    if best:
        out["matmul_max_tflops"] = best
    if curves:
        out["moe_tau_by_granularity"] = {c: [p for _, p in sorted(points.items())]
                                         for c, points in sorted(curves.items())}
    return out


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
DENSE = {2048: "mlp_step/fused_gelu_residual/bf16/d:2048/ff:8192/tok:32768"}
write("moe_h100.json", document("h100", context("h100", "node1"), moe,
                                {n: DENSE[2048] for n, _ in moe if n.startswith("moe_step/") and "/d:2048/" in n}))

# Attention beside the matmuls it is read against (wflops attention-share): best bf16 matmul 700.
ATT = "b:4/h:16/s:4096/d:128"
attention = document("h100", dict(context("h100", "node1"), suite="attention"), [
    (MM1, [650]),
    (MM2, [700]),
    (FP8, [1300]),                     # 65.7% of the fp8 peak (1979), not 131% of the bf16 one
    (f"attention_fwd/fused/bf16/{ATT}/causal:0", [350]),
    (f"attention_bwd/fused/bf16/{ATT}/causal:0", [280]),
    (f"attention_fwd/fused/bf16/{ATT}/causal:1", [250]),
    (f"attention_bwd/fused/bf16/{ATT}/causal:1", [200]),
    (f"attention_fwd/unfused/bf16/{ATT}/causal:0", [100]),
])
write("attention_h100.json", attention)
