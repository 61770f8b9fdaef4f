"""Read-only commands on a workspace of 100 tasks: wall time of the real CLI process (interpreter
start included), and proof that none of them imports Prefect. Target: under 1 s each.

    .venv/bin/python bench/bench_readonly.py [--tasks 100] [--repeat 5]
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawback.demo import sample  # noqa: E402


def build(base: Path, n: int) -> Path:
    root = base / "ws"
    root.mkdir(parents=True)
    sample.git(root, "init", "-q", "-b", "main")
    sample.git(root, "config", "user.name", "Bench")
    sample.git(root, "config", "user.email", "bench@example.invalid")
    tasks = []
    for i in range(n):
        tid = f"T{i:03d}"
        d = root / "tasks" / tid
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(f"version: 1.0.0\nname: task {tid}\n")
        (d / "main.py").write_text("print('hi')\n")
        for k in range(3):
            (d / f"mod{k}.py").write_text(f"X = {k}\n" * 50)
        (d / "state").mkdir()
        (d / "state" / "s.json").write_text("{}")
        tasks.append({"id": tid, "name": tid, "version": "1.0.0", "status": "active",
                      "location": f"tasks/{tid}", "entry_point": "main.py",
                      "clawback": {"python": "none"}})
    (root / "task_registry.json").write_text(json.dumps({"tasks": tasks}, indent=2) + "\n")
    sample.git(root, "add", "-A")
    sample.git(root, "commit", "-q", "-m", "bench workspace")
    from flows.init import run_init

    t0 = time.perf_counter()
    result = run_init(str(root))
    assert not result.failures, result.failures
    print(f"init adopted {len(result.adopted)} tasks in {time.perf_counter() - t0:.1f}s", flush=True)
    return root


def timed(argv: list[str], repeat: int) -> tuple[float, int]:
    runs = []
    code = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "clawback", *argv], capture_output=True,
                              check=False)
        runs.append(time.perf_counter() - t0)
        code = proc.returncode
    return statistics.median(runs), code


def imports_prefect(argv: list[str]) -> bool:
    code = (f"import sys; from clawback.cli import main; main({argv!r}); "
            "print('prefect' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-ro-"))
    try:
        root = build(base, args.tasks)
        mid = f"T{args.tasks // 2:03d}"
        (root / "tasks" / mid / "main.py").write_text("print('drifted')\n")  # some drift to find
        ws = ["--workspace", str(root)]
        cases = {
            "status": ["status", *ws],
            "status --json": ["status", "--json", *ws],
            f"history --task {mid}": ["history", "--task", mid, *ws],
            f"verify-snapshot --task {mid}": ["verify-snapshot", "--task", mid, "--version", "1.0.0", *ws],
        }
        base_t, _ = timed(["--help"], args.repeat)
        print(f"\nread-only commands on {args.tasks} tasks (median of {args.repeat}, whole process):")
        print(f"  (python + clawback --help alone: {base_t:.2f}s)")
        for name, argv in cases.items():
            t, code = timed(argv, args.repeat)
            prefect = imports_prefect(argv)
            verdict = "ok" if t < 1.0 and not prefect else "OVER TARGET"
            print(f"  {name:32s} {t:.2f}s  exit {code}  imports prefect: {prefect}  [{verdict}]")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
