"""Snapshot and rollback of a big task: another checkout (BASE_DIR) against this one, in one run.

Both sides get identical copies of one workspace (T01 with FILES files / MB megabytes of random
bytes, versions 1.2.0 and 1.3.0 differing in 10% of the files). Each measurement runs in a fresh
process of that checkout's own .venv and times only ``run_snapshot`` (a new minor version after
10% of the files changed again) or ``run_rollback`` to 1.2.0 (task not running), without the
orchestrator. Runs interleave A B B A ... so machine noise hits both sides alike; the report is
the median of the per-round ratios (this / base) and every figure.

    .venv/bin/python bench/bench_compare.py /tmp/wt-i5-base [--files 5000] [--mb 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.bench_rollback import _relink, story  # noqa: E402
from clawback.demo import sample  # noqa: E402

# Run inside the measured checkout's interpreter: argv = checkout, workspace, what.
_MEASURE = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
root, what = sys.argv[2], sys.argv[3]
if what == "snapshot":
    from flows.snapshot import run_snapshot
    t0 = time.perf_counter()
    run_snapshot(root, "T01", bump="minor", message="bench")
else:
    from flows.rollback import run_rollback
    t0 = time.perf_counter()
    run_rollback(root, "T01", "1.2.0")
print(json.dumps(time.perf_counter() - t0))
"""


def measure(checkout: Path, src: Path, work: Path, what: str) -> float:
    root = work / f"run-{checkout.name}"
    shutil.copytree(src, root, symlinks=True)
    _relink(src, root)
    os.sync()
    proc = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", _MEASURE,
                           str(checkout), str(root), what],
                          cwd=work, capture_output=True, text=True, check=False)
    shutil.rmtree(root)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: {what} failed:\n{proc.stderr[-3000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", type=Path, help="the other checkout, with its own .venv")
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    base = args.base.resolve()
    if not (base / ".venv" / "bin" / "python").exists():
        raise SystemExit(f"{base} has no .venv: run `make venv` there first")
    work = Path(tempfile.mkdtemp(prefix="clawback-bench-cmp-"))
    os.environ.update(sample.offline_env(sample.make_wheelhouse(work / "wheels"), dict(os.environ)))
    os.environ.update({"CLAWBACK_ORCHESTRATOR": "none", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "TUSHARE_TOKEN": "bench-placeholder"})
    try:
        print(f"building a task of {args.files} files / {args.mb} MB ...", flush=True)
        src = story(work / "src", files=args.files, mb=args.mb).root
        lib = src / "tasks" / "T01" / "lib"
        for i, p in enumerate(sorted(lib.rglob("*.bin"))):  # the next snapshot has work to do
            if i % 10 == 5:
                p.write_bytes(os.urandom(p.stat().st_size))
        sides = {"base": base, "this": HERE}
        for what in ("snapshot", "rollback"):
            times: dict[str, list[float]] = {"base": [], "this": []}
            for i in range(args.rounds):
                order = ["base", "this"] if i % 2 == 0 else ["this", "base"]
                for side in order:
                    times[side].append(measure(sides[side], src, work, what))
                print(f"  {what} round {i + 1}: base {times['base'][-1]:.2f}s  "
                      f"this {times['this'][-1]:.2f}s  ratio {times['this'][-1] / times['base'][-1]:.3f}",
                      flush=True)
            ratios = sorted(t / b for t, b in zip(times["this"], times["base"], strict=True))
            print(f"{what} {args.files} files / {args.mb} MB, {args.rounds} interleaved rounds: "
                  f"base median {statistics.median(times['base']):.2f}s, this median "
                  f"{statistics.median(times['this']):.2f}s; median ratio {statistics.median(ratios):.3f}x "
                  f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}); target <= 1.1x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
