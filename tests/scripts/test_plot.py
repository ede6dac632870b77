#!/usr/bin/python3
"""Renders every kind of plot of scripts/plot from the result files of tests/data, in PNG and SVG,
and checks that each image exists, is not empty and is what its extension says; then checks that
bad input (a file that is not JSON, a counter that is not a number, --out naming a file or a place
that cannot be written, a --kind without data, --summary of two files) gives one clear line, exit
code 1, no traceback, and creates nothing.

usage: test_plot.py SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    source = sys.argv[1]
    plot = os.path.join(source, "scripts", "plot")
    data = os.path.join(source, "tests", "data")
    inputs = [os.path.join(data, n) for n in ("a100.json", "h100.json", "moe_h100.json")]
    failures = 0
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(["/usr/bin/python3", plot, *inputs, "--out", out], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout, run.stderr)
            return 1
        # `size` and `peak` make one figure per family (matmul, mlp_step, moe_step).
        stems = ["size-matmul", "size-mlp_step", "size-moe_step", "peak-matmul", "peak-mlp_step",
                 "peak-moe_step", "moe", "roofline"]
        for stem in stems:
            for ext, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<svg")):
                path = os.path.join(out, f"{stem}.{ext}")
                if not os.path.isfile(path) or os.path.getsize(path) < 1000:
                    print(f"FAIL {stem}.{ext}: missing or nearly empty")
                    failures += 1
                    continue
                with open(path, "rb") as f:
                    head = f.read(4096)
                if magic not in head:
                    print(f"FAIL {stem}.{ext}: not a {ext} image")
                    failures += 1
                else:
                    print(f"ok   {stem}.{ext} ({os.path.getsize(path)} bytes)")
        summary = subprocess.run(["/usr/bin/python3", plot, inputs[1], "--summary", "--out", out, "--format", "png"],
                                 capture_output=True, text=True)
        path = os.path.join(out, "summary.png")
        if summary.returncode != 0 or not os.path.isfile(path) or os.path.getsize(path) < 1000:
            print(f"FAIL --summary: exit {summary.returncode}, {summary.stderr!r}")
            failures += 1
        else:
            print("ok   summary.png")
        failures += check_breakdown(plot, data, out)
        failures += check_bad_inputs(plot, data, inputs, out)
    return 1 if failures else 0


def check_breakdown(plot, data, scratch):
    """--kind breakdown on the model-step fixture: one figure, breakdown.png and .svg; a file without a
    model step is refused."""
    out = os.path.join(scratch, "breakdown")
    run = subprocess.run(["/usr/bin/python3", plot, os.path.join(data, "model_step_h100.json"), "--kind", "breakdown",
                          "--out", out], capture_output=True, text=True)
    made = sorted(os.listdir(out)) if os.path.isdir(out) else []
    if run.returncode != 0 or made != ["breakdown.png", "breakdown.svg"] or \
            any(os.path.getsize(os.path.join(out, n)) < 1000 for n in made):
        print(f"FAIL --kind breakdown: exit {run.returncode}, made {made}, {run.stderr!r}")
        return 1
    with open(os.path.join(out, "breakdown.svg")) as f:
        svg = f.read()
    # Both steps are drawn, and the components' legend names the fused step's missing parts too.
    missing = [t for t in ("eager bf16", "fused bf16", "lm_head", "optimizer") if t not in svg]
    if missing:
        print(f"FAIL --kind breakdown: the figure lacks {missing}")
        return 1
    print("ok   breakdown.png, breakdown.svg")
    bad = subprocess.run(["/usr/bin/python3", plot, os.path.join(data, "h100.json"), "--kind", "breakdown", "--out",
                          os.path.join(scratch, "no-breakdown")], capture_output=True, text=True)
    if bad.returncode != 1 or "--kind breakdown: the files have no benchmarks" not in bad.stderr:
        print(f"FAIL --kind breakdown without a model step: exit {bad.returncode}, {bad.stderr!r}")
        return 1
    print("ok   refused: --kind breakdown without a model step")
    return 0


def check_bad_inputs(plot, data, inputs, scratch):
    failures = 0
    not_a_number = os.path.join(scratch, "string-counter.json")
    with open(inputs[0]) as f:
        doc = json.load(f)
    doc["benchmarks"][0]["tflops"] = "fast"
    with open(not_a_number, "w") as f:
        json.dump(doc, f)
    a_file = os.path.join(scratch, "a-file")
    open(a_file, "w").close()
    fresh = os.path.join(scratch, "must-not-exist")
    cases = [
        ([os.path.join(data, "malformed.json")], "malformed.json' is not valid JSON"),
        ([not_a_number], "counter 'tflops' is 'fast', not a number"),
        ([inputs[0], "--out", a_file], "is a file, not a folder"),
        ([inputs[0], "--out", os.path.join(a_file, "below")], "plot: error:"),
        ([inputs[0], "--kind", "moe", "--out", fresh], "--kind moe: the files have no benchmarks"),
        ([inputs[0], inputs[1], "--summary", "--out", fresh], "--summary draws one result file; 2 were given"),
        ([inputs[0], "--kind", "nope", "--out", fresh], "unknown plot kind 'nope'"),
    ]
    for args, expected in cases:
        bad = subprocess.run(["/usr/bin/python3", plot, *args], capture_output=True, text=True)
        lines = bad.stderr.strip().splitlines()
        if bad.returncode != 1 or len(lines) != 1 or not lines[0].startswith("plot: error:") or \
                expected not in lines[0] or "Traceback" in bad.stderr:
            print(f"FAIL {args}: exit {bad.returncode}, stderr {bad.stderr!r}")
            failures += 1
        else:
            print(f"ok   refused: {lines[0]}")
    if os.path.exists(fresh):
        print("FAIL a refused plot created its output folder")
        failures += 1
    return failures


if __name__ == "__main__":
    sys.exit(main())
