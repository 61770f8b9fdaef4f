"""``clawback sync-registry --check`` (what the post-merge and post-checkout hooks run): wall time
of the real CLI process, interpreter start included, at 1 and 200 adopted tasks and on the
generated large workspace (6,000 files), beside a floor. Target: under 0.5 s at 200 tasks.

The floor is the least any such check must do, in one Python process started the same way:
list the tags (``git for-each-ref refs/tags``), read every tag object in one ``git cat-file
--batch`` (the manifests), and parse task_registry.json. The check itself adds: clawback's
imports (GitPython, PyYAML), each config's ``version:`` line, each manifest's JSON and digest,
and one ``git rev-list`` for reachability.

    .venv/bin/python bench/bench_sync.py [--repeat 5] [--no-large]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawback.demo import sample  # noqa: E402

FLOOR = """
import json, subprocess, sys
root = sys.argv[1]
names = subprocess.run(["git", "for-each-ref", "--format=%(objectname)", "refs/tags"], cwd=root,
                       capture_output=True, check=True).stdout
subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=names, capture_output=True,
               check=True)
json.loads(open(root + "/task_registry.json", encoding="utf-8").read())
"""


def small(base: Path, n: int) -> Path:
    """``n`` adopted tasks without dependencies (sample.add_tasks), each tagged once."""
    root = base / f"ws{n}"
    root.mkdir(parents=True)
    sample.git(root, "init", "-q", "-b", "main")
    sample.git(root, "config", "user.name", "Bench")
    sample.git(root, "config", "user.email", "bench@example.invalid")
    (root / "task_registry.json").write_text('{"tasks": []}\n')
    sample.add_tasks(root, n)
    from flows.init import run_init

    assert not run_init(str(root)).failures
    return root


def large(base: Path) -> Path:
    root = sample.make_large_workspace(base / "large").resolve()
    env = sample.offline_env(sample.make_wheelhouse(base / "wheels"), dict(os.environ))
    env["CLAWBACK_ORCHESTRATOR"] = "none"
    subprocess.run([sys.executable, "-c", "import sys; from flows.init import run_init; "
                    "run_init(sys.argv[1])", str(root)], env=env, check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parent.parent)
    return root


def timed(argv: list[str], repeat: int) -> tuple[float, float, int]:
    """Median wall time, median CPU time (user + system of the process and its git children:
    what a busy machine does not inflate), exit code."""
    runs, cpu, code = [], [], 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        code = subprocess.run(argv, capture_output=True, check=False).returncode
        runs.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(runs), statistics.median(cpu), code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-large", action="store_true")
    args = ap.parse_args()
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-sync-"))
    try:
        cases = {"1 task": small(base, 1), "200 tasks": small(base, 200)}
        if not args.no_large:
            cases["large (6,000 files)"] = large(base)
        print(f"sync-registry --check, whole process, median of {args.repeat} "
              f"(load average {os.getloadavg()[0]:.1f}):")
        print(f"  {'workspace':22s} {'wall':>7s} {'cpu':>7s} {'floor':>7s} {'f.cpu':>7s}  exit  "
              "target (wall)")
        for name, root in cases.items():
            check, cpu, code = timed([sys.executable, "-m", "clawback", "sync-registry",
                                      "--check", "--workspace", str(root)], args.repeat)
            floor, floor_cpu, _ = timed([sys.executable, "-c", FLOOR, str(root)], args.repeat)
            ok = "ok" if check < 0.5 else "OVER 0.5 s"
            print(f"  {name:22s} {check:6.3f}s {cpu:6.3f}s {floor:6.3f}s {floor_cpu:6.3f}s  "
                  f"{code:>4d}  {ok}")
        tags = json.loads(subprocess.run(
            [sys.executable, "-m", "clawback", "sync-registry", "--check", "--json",
             "--workspace", str(cases["200 tasks"])], capture_output=True, check=False).stdout)
        print(f"  (200 tasks: {len(tags['result']['tasks'])} checked, "
              f"{len(tags['result']['findings'])} findings)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
