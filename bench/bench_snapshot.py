"""Snapshot of a big task against the floor on the same tree.

Tree: the sample workspace, adopted, then T01 gains FILES files totalling MB megabytes (random
bytes: the worst case for git's compression). Floor: `git add -A -- tasks/T01 task_registry.json`
+ `git commit` + `sha256sum` of the task's files, on an identical copy. Ours: `run_snapshot`
without the orchestrator (the same steps the flow runs). Prefect's fixed cost is measured apart:
a trivial flow on the embedded server, and the same snapshot as a flow on that server.

    .venv/bin/python bench/bench_snapshot.py [--files 5000] [--mb 200] [--repeat 3]
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


def build(base: Path, files: int, mb: int) -> Path:
    wheels = sample.make_wheelhouse(base / "wheels")
    os.environ.update(sample.offline_env(wheels, dict(os.environ)))
    root = sample.make_workspace(base / "template")
    from flows.init import run_init

    run_init(str(root))
    big = root / "tasks" / "T01" / "lib"
    size = mb * 1024 * 1024 // files
    for i in range(files):
        d = big / f"pkg{i // 250:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i:05d}.py").write_bytes(os.urandom(size))
    return root


def floor_once(src: Path, work: Path) -> float:
    root = work / "floor"
    shutil.copytree(src, root, symlinks=True)
    files = [str(p) for p in (root / "tasks" / "T01").rglob("*") if p.is_file()
             and "state" not in p.parts]
    os.sync()  # no write-back of an earlier run's objects inside this measurement
    t0 = time.perf_counter()
    subprocess.run(["git", "add", "-A", "--", "tasks/T01", "task_registry.json"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "floor"], cwd=root, check=True)
    subprocess.run(["xargs", "-0", "sha256sum"], input="\0".join(files).encode(), cwd=root,
                   check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(root)
    return elapsed


def ours_once(src: Path, work: Path) -> tuple[float, dict[str, float]]:
    from flows.snapshot import run_snapshot

    root = work / "ours"
    shutil.copytree(src, root, symlinks=True)
    _relink_envs(src, root)
    os.sync()
    t0 = time.perf_counter()
    result = run_snapshot(str(root), "T01", bump="minor", message="bench")
    elapsed = time.perf_counter() - t0
    assert result.files >= 5, result
    shutil.rmtree(root)
    return elapsed, result.timings


def _relink_envs(src: Path, root: Path) -> None:
    """Environments are not relocatable: point the copy's `current` links at the originals."""
    for link in (root / ".clawback" / "envs").glob("*/current"):
        target = (src / ".clawback" / "envs" / link.parent.name / os.readlink(link)).resolve()
        link.unlink()
        link.symlink_to(target)


def prefect_cost(src: Path, work: Path) -> dict[str, float]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows import runtime
    from flows.snapshot import run_snapshot

    runtime.quiet_defaults()
    from prefect import flow

    @flow(name="bench-trivial")
    def trivial() -> int:
        return 1

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        t0 = time.perf_counter()
        trivial()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        trivial()
        warm = time.perf_counter() - t0
        root = work / "flow"
        shutil.copytree(src, root, symlinks=True)
        _relink_envs(src, root)
        t0 = time.perf_counter()
        runtime.run("snapshot", run_snapshot, workspace=str(root), task_id="T01", bump="minor")
        as_flow = time.perf_counter() - t0
    return {"server start + first flow": first, "trivial flow (warm)": warm,
            "snapshot as a flow (warm)": as_flow}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-prefect", action="store_true")
    args = ap.parse_args()
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-"))
    try:
        print(f"building a task of {args.files} files / {args.mb} MB ...", flush=True)
        src = build(base, args.files, args.mb)
        floors, ours, timings = [], [], []
        for i in range(args.repeat):
            if i % 2:  # alternate which side runs first
                o, t = ours_once(src, base)
                f = floor_once(src, base)
            else:
                f = floor_once(src, base)
                o, t = ours_once(src, base)
            floors.append(f)
            ours.append(o)
            timings.append(t)
            print(f"  run {i + 1}: floor {f:.2f}s  clawback {o:.2f}s  ratio {o / f:.2f}", flush=True)
        fm, om = statistics.median(floors), statistics.median(ours)
        print(f"\nsnapshot {args.files} files / {args.mb} MB (median of {args.repeat}):")
        print(f"  floor (git add + git commit + sha256sum): {fm:.2f}s")
        print(f"  clawback snapshot (no orchestrator):      {om:.2f}s")
        ratios = sorted(o / f for o, f in zip(ours, floors, strict=True))
        print(f"  ratio of medians: {om / fm:.2f}x; median of per-run ratios: "
              f"{statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}); target <= 1.5x")
        last = timings[len(timings) // 2]
        print("  clawback steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in last.items()))
        if not args.no_prefect:
            os.environ["CLAWBACK_ORCHESTRATOR"] = "prefect"
            os.environ.pop("PREFECT_API_URL", None)
            cost = prefect_cost(src, base)
            print("Prefect's fixed cost (embedded temporary server), separately:")
            for k, v in cost.items():
                print(f"  {k}: {v:.2f}s")
            print(f"  => orchestration overhead on this snapshot: {cost['snapshot as a flow (warm)'] - om:.2f}s")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
