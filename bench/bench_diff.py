"""``clawback diff`` on the large workspace against git's own ``diff --stat`` of the same paths.

Tree: sample.make_large_workspace (6,000 files, T01 holding most), adopted; T01 then gets a
1.2.0 with CHANGED files edited, and the live tree a few more edits. Measured, each as a fresh
process (interpreter start included, as a person or a hook runs it):

- two versions: ``clawback diff --task T01 --v1 1.1.0 --v2 1.2.0`` (and ``--stat``) vs the floor
  ``git diff --stat T01-v1.1.0 T01-v1.2.0 -- tasks/T01``;
- version vs working: ``clawback diff --task T01`` (and ``--stat``) vs the floor
  ``git diff --stat T01-v1.2.0 -- tasks/T01``;

at 1 task-sized registry and again after sample.add_tasks adds 200 tasks.

    .venv/bin/python bench/bench_diff.py [--changed 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawback.demo import sample  # noqa: E402


def build(base: Path, changed: int) -> Path:
    wheels = sample.make_wheelhouse(base / "wheels")
    os.environ.update(sample.offline_env(wheels, dict(os.environ)))
    root = sample.make_large_workspace(base / "ws")
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    run_init(str(root))
    mods = sorted((root / "tasks" / "T01" / "因子").rglob("*.py"))
    for path in mods[:: max(len(mods) // changed, 1)][:changed]:
        path.write_text(path.read_text(encoding="utf-8") + "# 1.2.0: tuned\n", encoding="utf-8")
    run_snapshot(str(root), "T01", bump="minor", message="bench")
    for path in mods[1:6]:
        path.write_text(path.read_text(encoding="utf-8") + "# being edited\n", encoding="utf-8")
    return root


def timed(argv: list[str], cwd: Path, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        runs.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-500:]}")
    return statistics.median(runs)


def measure(root: Path, repeat: int, label: str) -> None:
    cb = [sys.executable, "-m", "clawback", "diff", "--task", "T01", "--workspace", str(root)]
    cases = [
        ("1.1.0 -> 1.2.0", ["--v1", "1.1.0", "--v2", "1.2.0"],
         ["git", "diff", "--stat", "T01-v1.1.0", "T01-v1.2.0", "--", "tasks/T01"]),
        ("1.2.0 -> working", [], ["git", "diff", "--stat", "T01-v1.2.0", "--", "tasks/T01"]),
    ]
    print(f"\n{label} (median of {repeat}, each a new process):")
    for name, extra, floor_argv in cases:
        floor = timed(floor_argv, root, repeat)
        full = timed([*cb, *extra], root, repeat)
        stat = timed([*cb, *extra, "--stat"], root, repeat)
        print(f"  {name:18} floor (git diff --stat) {floor:.3f}s   clawback diff {full:.3f}s "
              f"({full / floor:.1f}x)   --stat {stat:.3f}s ({stat / floor:.1f}x)   target < 1 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changed", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-diff-"))
    try:
        print(f"building the large workspace, {args.changed} files changed in 1.2.0 ...", flush=True)
        root = build(base, args.changed)
        start = timed([sys.executable, "-c", "import clawback.cli"], root, args.repeat)
        print(f"interpreter start + `import clawback.cli`: {start:.3f}s (in every figure below)")
        measure(root, args.repeat, "6,000 files, 5 tasks in the registry")
        sample.add_tasks(root, 200)
        measure(root, args.repeat, "the same after 200 more tasks")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
