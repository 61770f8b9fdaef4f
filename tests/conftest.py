"""Shared fixtures: real temporary git workspaces, a local wheelhouse, an offline uv setup, and
one session-scoped Prefect test harness for every flow test."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clawback.demo import sample
from flows import runtime
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process

runtime.quiet_defaults()  # as the CLI does, before any test imports Prefect


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.make_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path, uv_cache: Path) -> dict[str, str]:
    """uv installs only from the local wheelhouse: no network in tests."""
    env = sample.offline_env(wheelhouse, dict(os.environ))
    env["UV_CACHE_DIR"] = str(uv_cache)
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLAWBACK_ACTOR", "tester@ci")
    return env


@pytest.fixture(scope="session")
def large_template(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path,
                   uv_cache: Path) -> Path:
    """The large generated workspace (sample.make_large_workspace: 6,000 files, a list registry
    with deleted tasks, links into state, Chinese text, a token moved to ${TUSHARE_TOKEN}),
    adopted by ``init`` once per session. Read it in place only; copy it (``large_ws``) to
    change it."""
    import subprocess
    import sys

    root = sample.make_large_workspace(tmp_path_factory.mktemp("large") / "ws").resolve()
    env = sample.offline_env(wheelhouse, dict(os.environ))
    env.update(UV_CACHE_DIR=str(uv_cache), CLAWBACK_ACTOR="tester@ci")
    subprocess.run([sys.executable, "-c", "import sys; from flows.init import run_init; "
                    "run_init(sys.argv[1])", str(root)], env=env, check=True, capture_output=True)
    return root


@pytest.fixture
def large_ws(tmp_path: Path, large_template: Path, offline: dict[str, str]) -> Workspace:
    """A private copy of the adopted large workspace (environments and all), to change."""
    import shutil

    dest = tmp_path / "large"
    shutil.copytree(large_template, dest, symlinks=True)
    return Workspace(dest.resolve())


@pytest.fixture
def ws(tmp_path: Path, offline: dict[str, str]) -> Workspace:
    """The sample workspace: T01 1.1.0, T02 2.0.1 committed, T99 deleted, T01 state untracked."""
    return Workspace(sample.make_workspace(tmp_path / "ws").resolve())


def failing_after(real: Callable[..., object], what: str) -> Callable[..., object]:
    """Wrap a step so it does its work and then fails (fault injection by wrapping)."""

    def wrapped(*args: object, **kw: object) -> object:
        real(*args, **kw)
        raise RuntimeError(f"injected failure after {what}")

    return wrapped


def git(ws: Workspace, *args: str) -> str:
    return sample.git(ws.root, *args)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test harness (a real local server) for the whole session; yields its API URL."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield str(PREFECT_API_URL.value())


T01_13 = sample.T01_MAIN.format(version="1.3.0").replace(
    "import clawdemo_signals", "import clawdemo_signals, clawdemo_risk")


@pytest.fixture
def story(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, int | None]]:
    """The seed's story: 1.2.0 then 1.3.0 with new dependencies, 1.3.0 running."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "signals.py").write_text("def score():\n    return 1\n")
    (t01 / "main.py").write_text(sample.T01_MAIN.format(version="1.2.0"))
    run_snapshot(str(ws.root), "T01", bump="minor")                   # 1.2.0
    (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    (t01 / "main.py").write_text(T01_13)
    (t01 / "added_in_13.py").write_text("NEW = True\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                   # 1.3.0
    task = ws.task("T01")
    state = process.start(ws, task, py(ws))
    yield ws, state.pid
    for tid in ("T01", "T02"):
        process.stop(ws, ws.task(tid), timeout=2)


def py(ws: Workspace):
    return deps.env_root(ws.state_dir, "T01") / "current" / "bin" / "python"


def last_run_version(ws: Workspace) -> str | None:
    runs = ws.root / "tasks/T01/logs/runs.jsonl"
    for _ in range(100):
        if runs.exists() and runs.read_text().strip():
            return json.loads(runs.read_text().strip().splitlines()[-1])["version"]
        time.sleep(0.05)
    return None


def runs_again(ws: Workspace, version: str, timeout_s: float = 30) -> bool:
    """Does T01's newest run come from ``version`` within the time? (A process just restarted
    writes its first run after its interpreter starts: under load, a second or more.)"""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if last_run_version(ws) == version:
            return True
        time.sleep(0.2)
    return False


def world(ws: Workspace) -> dict[str, object]:
    """What a failed rollback must leave as it was (process: running the same version)."""
    t01 = ws.root / "tasks/T01"
    return {
        "files": {p.name: p.read_bytes() for p in t01.iterdir() if p.is_file()},
        "registry": (ws.root / "task_registry.json").read_bytes(),
        "head": git(ws, "rev-parse", "HEAD"), "tags": git(ws, "tag", "-l"),
        "index": git(ws, "ls-files", "-s"),
        "t02": (ws.root / "tasks/T02/config.yaml").read_bytes(),
        "state": (t01 / "state/positions.json").read_bytes(),
        "env": os.readlink(deps.env_root(ws.state_dir, "T01") / "current"),
        "packages": deps.installed(py(ws)),
        "running": process.run_state(ws, ws.task("T01")).running,
    }


def tree(root: Path) -> dict[str, Any]:
    """Everything of a directory that a read-only visit leaves alone: every entry's kind, mode,
    mtime and bytes (or link target), the directory's own included."""
    out: dict[str, Any] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", st.st_mode, st.st_mtime_ns)
        else:
            out[rel] = ("file", st.st_mode, st.st_mtime_ns, path.read_bytes())
    return out
