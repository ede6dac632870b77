#!/usr/bin/python3
"""Checks docs/result.schema.json against result files.

usage: check_schema.py SOURCE_DIR CPU_TEST_BINARY

1. Runs the ResultWriter.RoundTrip test of the C++ tests, which writes a result file through the
   writer of `wflops run` (ResultReporter), and validates that file: the schema describes what
   wflops really writes.
2. Writes a result file through scripts/peers/wflops_peer.py (the PyTorch peers' writer) with
   made-up timings, validates it, and has `wflops compare` read it beside a wflops fixture.
3. Validates the hand-made fixtures of tests/data that are results, checks that their pct_peak is
   against the peak of each benchmark's own dtype (the context's peak_tflops_<dtype>), and checks
   that the ones that are not results (not_wflops.json) are rejected.
Needs python3-jsonschema (Debian's package).
"""
import json
import os
import subprocess
import sys
import tempfile

import jsonschema


def main():
    source_dir, test_binary = sys.argv[1], sys.argv[2]
    with open(os.path.join(source_dir, "docs", "result.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    failures = 0

    def check(path, expect_valid):
        nonlocal failures
        with open(path) as f:
            doc = json.load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if bool(errors) == expect_valid:
            failures += 1
            what = "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:3]) or "it validated"
            print(f"FAIL {path}: expected {'valid' if expect_valid else 'invalid'}: {what}")
        else:
            print(f"ok   {path} ({'valid' if expect_valid else 'rejected'})")

    with tempfile.TemporaryDirectory() as tmp:
        written = os.path.join(tmp, "written.json")
        env = dict(os.environ, WFLOPS_WRITTEN_RESULT=written)
        run = subprocess.run([test_binary, "--gtest_filter=ResultWriter.RoundTrip"], env=env,
                             capture_output=True, text=True)
        if run.returncode != 0 or not os.path.exists(written):
            print(run.stdout, run.stderr)
            print("FAIL the writer test did not leave a result file")
            return 1
        check(written, True)

    data = os.path.join(source_dir, "tests", "data")
    sys.path.insert(0, os.path.join(source_dir, "scripts", "peers"))
    import wflops_peer
    with tempfile.TemporaryDirectory() as tmp:
        peer = os.path.join(tmp, "peer.json")
        results = wflops_peer.PeerResults(peer, context_from=os.path.join(data, "h100.json"))
        name = wflops_peer.peer_name("matmul/cublas/bf16/m:4096/n:8192/k:4096", "torch_eager")
        results.add(name, "bf16", [4e-4, 4.1e-4, 3.9e-4], flops=2.0 * 4096 * 8192 * 4096)
        results.add_error(wflops_peer.peer_name("matmul/cublas/fp8/m:4096/n:8192/k:4096", "torch_eager"),
                          "fp8 needs torch._scaled_mm")
        # A benchmark that runs out of memory becomes an error entry; the run goes on.
        import types
        fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(OutOfMemoryError=MemoryError,
                                                                      empty_cache=lambda: None))
        oom_name = wflops_peer.peer_name("matmul/cublas/bf16/m:65536/n:65536/k:65536", "torch_eager")
        with results.errors_recorded(oom_name, fake_torch):
            raise MemoryError("tried to allocate 8.00 GiB")
        if results.benchmarks[-1].get("error_message") != "out of memory: tried to allocate 8.00 GiB":
            print(f"FAIL errors_recorded wrote {results.benchmarks[-1]}")
            failures += 1
        try:
            wflops_peer.PeerResults(peer)
            print(f"FAIL the peer writer overwrote {peer}")
            failures += 1
        except FileExistsError:
            print("ok   the peer writer refuses to overwrite an existing file")
        results.close()
        check(peer, True)
        with open(peer) as f:
            doc = json.load(f)
        median = [b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"][0]
        expected = 2.0 * 4096 * 8192 * 4096 / 4e-4 / 1e12
        if abs(median["tflops"] - expected) > 1e-6 or doc["context"]["source"] != "pytorch":
            print(f"FAIL peer median tflops {median['tflops']} or source {doc['context']['source']}")
            failures += 1
        wflops = os.path.join(os.path.dirname(test_binary), "wflops")
        run = subprocess.run([wflops, "compare", os.path.join(data, "h100.json"), peer, "--ignore-impl"],
                             capture_output=True, text=True)
        # The peer's median, 2*4096*8192*4096 FLOPs in 0.4 ms = 687.2 TFLOP/s, paired with wflops'.
        if run.returncode != 0 or "687.2" not in run.stdout:
            print(run.stdout, run.stderr)
            print("FAIL wflops compare did not read the peer file")
            failures += 1
        else:
            print("ok   wflops compare reads the peer file")
    for name in ["a100.json", "h100.json", "moe_h100.json", "attention_h100.json", "model_step_h100.json"] + \
            [os.path.join("cluster", n) for n in sorted(os.listdir(os.path.join(data, "cluster")))]:
        check(os.path.join(data, name), True)
        failures += check_pct_peak(os.path.join(data, name))
    check(os.path.join(data, "not_wflops.json"), False)
    return 1 if failures else 0


def check_pct_peak(path):
    """1 when a benchmark's pct_peak is not 100 * tflops / the peak of its own dtype."""
    with open(path) as f:
        doc = json.load(f)
    context = doc["context"]
    for b in doc["benchmarks"]:
        if b.get("error_occurred") or "pct_peak" not in b or b.get("aggregate_name") in ("stddev", "cv"):
            continue
        dtype = b["run_name"].split("/")[2]
        peak = context.get("peak_tflops_" + dtype)
        if not peak or abs(b["pct_peak"] - 100 * b["tflops"] / peak) > 1e-6 * b["pct_peak"]:
            print(f"FAIL {path}: {b['name']} has pct_peak {b['pct_peak']}, but tflops {b['tflops']} is "
                  f"{100 * b['tflops'] / peak if peak else float('nan'):.4g}% of peak_tflops_{dtype} {peak}")
            return 1
    print(f"ok   {path}: pct_peak against each dtype's own peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
