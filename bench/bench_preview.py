"""``clawback preview --materialize`` of the biggest task of the generated large workspace against
the floor on the same tree: ``git archive <tag> -- <location> | tar -x -C DIR``, the same files
written by git and tar with no checks at all.

Tree: sample.make_large_workspace (6,000 files, T01 holding ~5,500), adopted by ``init``. Each
run is a new process (interpreter start included), into a new directory outside the workspace,
after an ``os.sync()`` (no earlier run's write-back in it), the floor and ours interleaved so a
busy machine weighs on both alike; wall and CPU time (user +
system of the process and its children) are medians. Measured twice: with
PYTHONDONTWRITEBYTECODE=1 (every run recompiles clawback's sources, as in this repository's
environment, provided no ``__pycache__`` was left in the checkout) and without it (a real
install, its bytecode cached by a first run, in a PYTHONPYCACHEPREFIX of the bench's own).

    .venv/bin/python bench/bench_preview.py [--files 6000] [--repeat 5] [--against SRC]

``--against SRC`` also runs the clawback of another checkout (say an older commit, from
``git archive``) interleaved with this one, for a before/after on the same machine state.
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent.parent
TAG, LOCATION = "T01-v1.1.0", "tasks/T01"


def build(base: Path, files: int) -> Path:
    wheels = sample.make_wheelhouse(base / "wheels")
    os.environ.update(sample.offline_env(wheels, dict(os.environ)))
    root = sample.make_large_workspace(base / "ws", files=files).resolve()
    from flows.init import run_init

    assert not run_init(str(root)).failures
    return root


def once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    os.sync()  # no write-back of an earlier run's files inside this measurement
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-800:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another clawback checkout to time alongside")
    args = ap.parse_args()
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-preview-"))
    try:
        root = build(base, args.files)
        count = len(sample.git(root, "ls-tree", "-r", "-z", "--name-only", TAG, "--",
                               LOCATION).split("\0")) - 1
        print(f"{TAG}: {count} files; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores; median of {args.repeat}, each a new process", flush=True)
        out = base / "out"
        out.mkdir()
        sources = {"clawback": HERE, **({"against": args.against.resolve()} if args.against else {})}
        for cached in (False, True):
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
            if cached:  # the bytecode in a directory of its own: the checkouts stay as they were
                env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
            else:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            results: dict[str, list[tuple[float, float]]] = {"floor": []}
            results.update({name: [] for name in sources})
            for i in range(args.repeat + (1 if cached else 0)):  # cached: a first run writes it
                dest = out / f"floor-{cached}-{i}"
                dest.mkdir()
                run = once(["sh", "-c", f'git archive {TAG} -- {LOCATION} | tar -x -C "$1"', "sh",
                            str(dest)], root, env)
                if not cached or i:
                    results["floor"].append(run)
                for name, src in sources.items():
                    dest = out / f"{name}-{cached}-{i}"
                    run = once([sys.executable, "-m", "clawback", "preview", "--task", "T01",
                                "--version", "1.1.0", "--materialize", str(dest), "--workspace",
                                str(root)], src, env)
                    if not cached or i:
                        results[name].append(run)
            shutil.rmtree(out)  # at the end: a removal's own write-back is no run's cost
            out.mkdir()
            label = "bytecode cached" if cached else "PYTHONDONTWRITEBYTECODE=1"
            floor = statistics.median(w for w, _ in results["floor"])
            print(f"\n{label}:")
            for name, runs in results.items():
                wall = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                ratio = "" if name == "floor" else f"  {wall / floor:4.1f}x the floor"
                print(f"  {name:10} wall {wall:6.3f}s  cpu {cpu:6.3f}s{ratio}", flush=True)
        for src in sources.values():
            subprocess.run([sys.executable, "-m", "clawback", "preview", "--cleanup",
                            "--workspace", str(root)], cwd=src, capture_output=True, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
