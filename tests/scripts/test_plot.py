#!/usr/bin/python3
"""Renders every kind of plot of scripts/plot from the result files of tests/data, in PNG and SVG,
and checks that each image exists, is not empty and is what its extension says; then checks that a
file that is not JSON gives a clear error and exit code 1.

usage: test_plot.py SOURCE_DIR
"""
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
        # One figure per kind; `size` makes one per family (matmul, mlp_step, moe_step).
        stems = ["size-matmul", "size-mlp_step", "size-moe_step", "peak", "moe", "roofline"]
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
        bad = subprocess.run(["/usr/bin/python3", plot, os.path.join(data, "malformed.json"), "--out", out],
                             capture_output=True, text=True)
        if bad.returncode != 1 or "malformed.json' is not valid JSON" not in bad.stderr:
            print(f"FAIL malformed input: exit {bad.returncode}, stderr {bad.stderr!r}")
            failures += 1
        else:
            print("ok   malformed input rejected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
