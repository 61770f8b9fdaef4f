"""Runtime state is never deleted or rewritten by a rollback, a repair or an undo: the state paths in force are the union of the current version's, the target's and the
defaults, and the files the settings name (pidfile, health source) are state too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import flows.rollback as fr
from flows.init import run_init
from flows.recover import run_recover
from flows.snapshot import run_snapshot
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry
from tasks_lib.rollback import verify_live
from tasks_lib.runtime import process
from tasks_lib.verify_live import files_level
from tasks_lib.verify_snapshot import load_snapshot
from tests.conftest import failing_after, git


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")  # the sample config references it


def set_settings(ws: Workspace, task_id: str, **values: object) -> None:
    reg = Registry.load(ws.registry_path)
    entry = reg.entry(task_id)
    entry["clawback"] = {**(entry.get("clawback") or {}), **values}
    reg.set_entry(task_id, entry)
    reg.save()


def plain_task(ws: Workspace) -> None:
    """T01 without third-party imports (python: none runs it with the PATH's python3)."""
    (ws.root / "tasks/T01/main.py").write_text(
        "import time\n\nif __name__ == '__main__':\n    while True:\n        time.sleep(1)\n")
    (ws.root / "tasks/T01/requirements.txt").write_text("")


def tree(ws: Workspace, rev: str) -> list[str]:
    return git(ws, "ls-tree", "-r", "--name-only", rev, "--", "tasks/T01").split()


@pytest.fixture
def cache_story(ws: Workspace) -> Workspace:
    """1.1.0 (adopted) has no cache/ rule; 1.2.0 declares cache/ as state; cache/ holds data."""
    run_init(str(ws.root))
    set_settings(ws, "T01", state_paths=["cache/"], python="none")
    plain_task(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.2.0
    cache = ws.root / "tasks/T01/cache"
    cache.mkdir()
    (cache / "positions.bin").write_bytes(b"\x00runtime data\xff")
    return ws


def test_a_rollback_keeps_the_state_the_current_version_declares(cache_story: Workspace) -> None:
    ws = cache_story
    data = ws.root / "tasks/T01/cache/positions.bin"
    fr.run_rollback(str(ws.root), "T01", "1.1.0")      # 1.1.0 does not know cache/ as state
    assert data.read_bytes() == b"\x00runtime data\xff"
    assert "tasks/T01/cache/positions.bin" not in tree(ws, "HEAD")       # and never committed
    assert all(lv.ok for lv in verify_live(ws, "T01", "1.1.0")[:2])     # not an "extra" file


def test_a_rollback_keeps_the_state_the_target_declares(cache_story: Workspace) -> None:
    ws = cache_story
    set_settings(ws, "T01", state_paths=[])            # the agent drops the rule in 1.3.0
    os.remove(ws.root / "tasks/T01/cache/positions.bin")
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.3.0, no cache/ yet
    data = ws.root / "tasks/T01/cache/positions.bin"
    data.write_bytes(b"written by 1.3.0")
    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert data.read_bytes() == b"written by 1.3.0"


@pytest.mark.parametrize("step_name", ["restore_files", "restore_registry", "verify"])
def test_an_undo_keeps_state_too(cache_story: Workspace, monkeypatch: pytest.MonkeyPatch,
                                 step_name: str) -> None:
    ws = cache_story
    data = ws.root / "tasks/T01/cache/positions.bin"
    monkeypatch.setattr(fr, step_name, failing_after(getattr(fr, step_name), step_name))
    with pytest.raises(Exception, match="injected"):
        fr.run_rollback(str(ws.root), "T01", "1.1.0")
    assert data.read_bytes() == b"\x00runtime data\xff"


def test_a_repair_keeps_state(cache_story: Workspace) -> None:
    ws = cache_story
    (ws.root / "tasks/T01/main.py").write_text("broken = (\n")           # damage
    run_recover(str(ws.root), "T01", "1.2.0")
    assert (ws.root / "tasks/T01/cache/positions.bin").read_bytes() == b"\x00runtime data\xff"
    assert "broken" not in (ws.root / "tasks/T01/main.py").read_text()


def test_files_named_by_the_settings_are_state(ws: Workspace) -> None:
    """A custom pidfile and health source inside the task directory are never committed, never
    reported as extra, never removed by a rollback."""
    run_init(str(ws.root))
    set_settings(ws, "T01", python="none", run={"type": "process", "pidfile": "run.pid"},
                 health={"source": "metrics/outcomes.txt", "error_pattern": "ERROR"})
    t01 = ws.root / "tasks/T01"
    plain_task(ws)
    (t01 / "metrics").mkdir()
    (t01 / "metrics/outcomes.txt").write_text("2026-12-01 09:00:00 ok\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.2.0
    task = ws.task("T01")
    process.start(ws, task)
    try:
        assert (t01 / "run.pid").is_file()
        run_snapshot(str(ws.root), "T01", bump="minor")                 # 1.3.0, running
        names = tree(ws, "HEAD")
        assert "tasks/T01/run.pid" not in names and "tasks/T01/metrics/outcomes.txt" not in names
        _, parsed = load_snapshot(ws, "T01", "1.3.0")
        assert files_level(ws, ws.task("T01"), parsed.snapshot).ok
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
        assert (t01 / "metrics/outcomes.txt").read_text() == "2026-12-01 09:00:00 ok\n"
        assert json.loads((t01 / "run.pid").read_text())["version"] == "1.2.0"   # restarted
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_a_symlink_named_like_a_state_directory_is_state(ws: Workspace, tmp_path: Path) -> None:
    """``data -> /mnt/disk`` is the state directory data/: not committed, not removed."""
    run_init(str(ws.root))
    set_settings(ws, "T01", python="none")
    plain_task(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.2.0, no link
    disk = tmp_path / "disk"
    disk.mkdir()
    (disk / "ticks.bin").write_bytes(b"ticks")
    os.symlink(disk, ws.root / "tasks/T01/data")
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.3.0
    assert "tasks/T01/data" not in tree(ws, "HEAD")
    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert os.readlink(ws.root / "tasks/T01/data") == str(disk)
    assert (disk / "ticks.bin").read_bytes() == b"ticks"
