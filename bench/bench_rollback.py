"""Rollback against its floors.

1. time to recovery (command start -> new process up, grace 0.2 s included) of the real CLI for
   a 200-file task without a dependency change: on a running Prefect server, and embedded;
2. a dependency change: the cached environment switch vs `uv pip sync` of the same lock into the
   live environment;
3. 5,000 files / 200 MB: rollback (no orchestrator) vs the floor `git restore --source=<tag> --
   <task dir>` + `sha256sum` + process restart, on identical copies;
4. rollback time with 1 and with 200 other tasks in the workspace.

    .venv/bin/python bench/bench_rollback.py [--quick]
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
from tasks_lib.core.workspace import Workspace  # noqa: E402
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process


def story(root: Path, files: int = 0, mb: int = 0, extra_tasks: int = 0) -> Workspace:
    """1.2.0 and 1.3.0 (different code; optionally a big tree), 1.3.0 running."""
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    sample.make_workspace(root)
    ws = Workspace(root.resolve())
    if extra_tasks:
        sample.add_tasks(root, extra_tasks)
    run_init(str(root))
    t01 = root / "tasks" / "T01"
    lib = t01 / "lib"
    n = files or 200
    size = (mb * 1024 * 1024 // n) if mb else 2048
    for i in range(n):
        d = lib / f"p{i // 250:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i:05d}.{'bin' if mb else 'py'}").write_bytes(os.urandom(size) if mb else b"x = 1\n" * (size // 6))
    run_snapshot(str(root), "T01", bump="minor")                      # 1.2.0
    for i in range(0, n, 10):                                         # 1.3.0 changes 10%
        p = lib / f"p{i // 250:03d}" / f"m{i:05d}.{'bin' if mb else 'py'}"
        p.write_bytes(os.urandom(size) if mb else b"y = 2\n" * (size // 6))
    (t01 / "main.py").write_text(sample.T01_MAIN.format(version="1.3.0"))
    run_snapshot(str(root), "T01", bump="minor")                      # 1.3.0
    return ws


def start(ws: Workspace) -> None:
    py = deps.env_root(ws.state_dir, "T01") / "current" / "bin" / "python"
    process.start(ws, ws.task("T01"), py)


def cli_rollback(ws: Workspace, env: dict[str, str]) -> tuple[float, float]:
    """(command start -> new process up, command start -> command exit) of the real CLI."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "clawback", "rollback", "--task", "T01", "--to",
                           "1.2.0", "--grace", "0.2", "--workspace", str(ws.root)],
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)
    ended = time.time()
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _up_since(ws, t0), ended - t0


def _up_since(ws: Workspace, t0: float) -> float:
    import psutil

    state = process.run_state(ws, ws.task("T01"))
    assert state.running and state.pid, state.detail
    return psutil.Process(state.pid).create_time() - t0


def warm_rollback(ws: Workspace) -> tuple[float, float]:
    """The same rollback as a flow run in a process that has Prefect loaded and the server's client
    warm: a served deployment, or the health check's automatic rollback."""
    from flows.prefect_flows import rollback_flow

    t0 = time.time()
    rollback_flow(str(ws.root), "T01", "1.2.0", grace_s=0.2)
    ended = time.time()
    return _up_since(ws, t0), ended - t0


def time_to_recovery(base: Path, repeat: int) -> None:
    print("\n1. time to recovery, 200-file task, no dependency change (grace 0.2 s);"
          "\n   'up' = command start -> new process created, 'exit' = command start -> command done:")
    modes = ("CLI, no orchestrator", "CLI, Prefect server", "warm flow, Prefect server", "CLI, embedded Prefect")
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        url = str(PREFECT_API_URL.value())
        warm_up = story(base / "ttr-warm-up")
        start(warm_up)
        warm_rollback(warm_up)                          # first flow run in this process: not counted
        process.stop(warm_up, warm_up.task("T01"), timeout=3)
        for i in range(repeat):
            for mode in modes[:3]:
                ws = story(base / f"ttr-{modes.index(mode)}-{i}")
                start(ws)
                if mode.startswith("warm"):
                    os.environ["CLAWBACK_ORCHESTRATOR"] = "prefect"
                    results[mode].append(warm_rollback(ws))
                    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
                else:
                    env = ({"CLAWBACK_ORCHESTRATOR": "none"} if "no orch" in mode
                           else {"PREFECT_API_URL": url, "CLAWBACK_ORCHESTRATOR": "prefect"})
                    results[mode].append(cli_rollback(ws, env))
                process.stop(ws, ws.task("T01"), timeout=3)
    ws = story(base / "ttr-embedded")
    start(ws)
    results[modes[3]].append(cli_rollback(ws, {"CLAWBACK_ORCHESTRATOR": "prefect", "PREFECT_API_URL": ""}))
    process.stop(ws, ws.task("T01"), timeout=3)
    for mode, runs in results.items():
        up = statistics.median(r[0] for r in runs)
        done = statistics.median(r[1] for r in runs)
        print(f"  {mode:27s} up {up:5.2f}s  exit {done:5.2f}s  (median of {len(runs)})"
              + ("   target: up <= 3 s" if "server" in mode else ""))


def dependency_switch(base: Path) -> None:
    print("\n2. dependency change 1.3.0 -> 1.2.0 packages:")
    from flows.rollback import run_rollback
    from flows.snapshot import run_snapshot

    ws = story(base / "deps")
    (ws.root / "tasks/T01/requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    run_snapshot(str(ws.root), "T01", version="1.4.0")
    r = run_rollback(str(ws.root), "T01", "1.2.0", grace_s=0.2)
    switch = r.timings["sync-dependencies"]
    snap12 = deps.Lock.from_text(_manifest(ws, "T01-v1.2.0").python_lock)
    snap14 = deps.Lock.from_text(_manifest(ws, "T01-v1.4.0").python_lock)
    lock12, lock14 = base / "lock12.txt", base / "lock14.txt"
    lock12.write_text(snap12.text)
    lock14.write_text(snap14.text)
    uv_sync = _median_of(3, lambda i: _timed_sync(base / f"uv-env-{i}", lock14, [
        deps.uv_bin(), "pip", "sync", "-q", "--require-hashes", "--python", "{python}", str(lock12)]))
    piptools = _pip_tools(base)
    pip_sync = None if piptools is None else _median_of(3, lambda i: _timed_sync(
        base / f"pip-env-{i}", lock14, [str(piptools / "bin" / "pip-sync"), "-q", "--python-executable",
                                        "{python}", "--no-index", "--find-links",
                                        os.environ["UV_FIND_LINKS"], str(lock12)]))
    print(f"  cached environment switch (rollback step): {switch * 1000:7.1f} ms   target: adds <= 1 s")
    print(f"  uv pip sync of the same lock:               {uv_sync * 1000:7.1f} ms (median of 3)")
    print("  pip-sync (pip-tools) of the same lock:      "
          + (f"{pip_sync * 1000:7.1f} ms (median of 3)" if pip_sync is not None
             else "not measured: pip-tools could not be installed from the package index"))


def _timed_sync(env: Path, start_lock: Path, argv: list[str]) -> float:
    """A venv with pip (as pip-sync needs) holding ``start_lock``, then the timed sync command."""
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = str(env / "bin" / "python")
    subprocess.run([deps.uv_bin(), "pip", "install", "-q", "--python", python, "-r", str(start_lock)],
                   check=True)
    t0 = time.perf_counter()
    subprocess.run([a.replace("{python}", python) for a in argv], check=True, capture_output=True)
    return time.perf_counter() - t0


def _pip_tools(base: Path) -> Path | None:
    """pip-tools in a scratch venv, from the package index (it is not a clawback dependency)."""
    env = base / "pip-tools"
    online = {k: v for k, v in os.environ.items() if k not in ("UV_NO_INDEX", "UV_FIND_LINKS")}
    made = subprocess.run([deps.uv_bin(), "venv", "-q", str(env)], env=online, check=False)
    got = made.returncode == 0 and subprocess.run(
        [deps.uv_bin(), "pip", "install", "-q", "--python", str(env / "bin" / "python"), "pip-tools"],
        env=online, check=False).returncode == 0
    return env if got else None


def _median_of(n: int, fn) -> float:
    return statistics.median(fn(i) for i in range(n))


def _manifest(ws: Workspace, tag: str):
    from tasks_lib.formats.manifest import parse_tag_message

    return parse_tag_message(ws.git.tag_message(tag)).snapshot


def big_tree(base: Path, files: int, mb: int, repeat: int) -> None:
    print(f"\n3. rollback of {files} files / {mb} MB (10% of files differ) vs the floor:")
    from flows.rollback import run_rollback

    src = story(base / "big-src", files=files, mb=mb).root
    ours, floors = [], []
    for i in range(repeat):
        a = base / f"big-ours-{i}"
        ws = _copy(src, a)
        start(ws)
        os.sync()
        t0 = time.perf_counter()
        run_rollback(str(a), "T01", "1.2.0", grace_s=0.2)
        ours.append(time.perf_counter() - t0)
        process.stop(ws, ws.task("T01"), timeout=3)
        b = base / f"big-floor-{i}"
        wsb = _copy(src, b)
        start(wsb)
        os.sync()
        t0 = time.perf_counter()
        subprocess.run(["git", "restore", "--source=T01-v1.2.0", "--", "tasks/T01"], cwd=b, check=True)
        listed = [str(p) for p in (b / "tasks/T01").rglob("*") if p.is_file() and "state" not in p.parts]
        subprocess.run(["xargs", "-0", "sha256sum"], input="\0".join(listed).encode(), check=True,
                       stdout=subprocess.DEVNULL)
        process.stop(wsb, wsb.task("T01"), timeout=3)
        start(wsb)
        process.wait_alive(wsb, wsb.task("T01"), 0.2)
        floors.append(time.perf_counter() - t0)
        process.stop(wsb, wsb.task("T01"), timeout=3)
        shutil.rmtree(a)
        shutil.rmtree(b)
    o, f = statistics.median(ours), statistics.median(floors)
    print(f"  floor (git restore + sha256sum + restart): {f:.2f}s")
    print(f"  clawback rollback (no orchestrator):        {o:.2f}s   ratio {o / f:.2f}x (target <= 1.5x)")


def _copy(src: Path, dest: Path) -> Workspace:
    """An identical copy of a bench workspace whose environment links still resolve."""
    shutil.copytree(src, dest, symlinks=True)
    _relink(src, dest)
    return Workspace(dest.resolve())


def _relink(src: Path, root: Path) -> None:
    for link in (root / ".clawback" / "envs").glob("*/current"):
        target = (src / ".clawback" / "envs" / link.parent.name / os.readlink(link)).resolve()
        link.unlink()
        link.symlink_to(target)


def scaling(base: Path, repeat: int) -> None:
    print("\n4. rollback time vs number of other tasks (no orchestrator, task not running;"
          f"\n   medians of {repeat} interleaved runs on copies of one workspace each):")
    from flows.rollback import run_rollback

    sources = {n: story(base / f"scale-{n}", extra_tasks=n - 1).root for n in (1, 200)}
    runs: dict[int, list[tuple[float, dict[str, float]]]] = {1: [], 200: []}
    for i in range(repeat):
        for n, src in sources.items():
            copy = _copy(src, base / f"scale-{n}-run{i}").root
            t0 = time.perf_counter()
            r = run_rollback(str(copy), "T01", "1.2.0")
            runs[n].append((time.perf_counter() - t0, r.timings))
            shutil.rmtree(copy)
    for n, got in runs.items():
        total = statistics.median(g[0] for g in got)
        steps = {k: statistics.median(g[1].get(k, 0.0) for g in got) for k in got[0][1]}
        print(f"  {n:3d} tasks: {total:.2f}s ("
              + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items()) + ")")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller big tree, fewer repeats")
    ap.add_argument("--only", choices=["scaling", "deps", "big", "ttr"], action="append",
                    help="run only these parts (repeatable)")
    args = ap.parse_args()
    parts = set(args.only or ["scaling", "deps", "big", "ttr"])
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-rb-"))
    wheels = sample.make_wheelhouse(base / "wheels")
    os.environ.update(sample.offline_env(wheels, dict(os.environ)))
    os.environ["TUSHARE_TOKEN"] = "bench-placeholder"
    os.environ["CLAWBACK_ORCHESTRATOR"] = "none"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    try:
        if "scaling" in parts:
            scaling(base, 3 if args.quick else 7)
        if "deps" in parts:
            dependency_switch(base)
        if "big" in parts:
            big_tree(base, 500 if args.quick else 5000, 20 if args.quick else 200, 1 if args.quick else 3)
        if "ttr" in parts:
            time_to_recovery(base, 1 if args.quick else 3)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
