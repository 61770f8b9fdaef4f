"""sync-registry's repair under faults: an exception or a SIGKILL after each step (the registry
saved, inside the commit, the commit journaled) leaves the workspace exactly as before, once the
next operation has undone the killed one; the repair then runs again cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from flows.sync_registry import run_sync_registry
from tasks_lib import registry_sync
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.recovery import interrupted, undo_interrupted
from tests.state.test_fault_matrix import failing_after, in_process, run_child
from tests.test_sync_registry import clone_with_release, make, sh, world

POINTS = [
    ("registry-saved", "tasks_lib.formats.registry:Registry.save"),
    ("inside-commit", "tasks_lib.gitops.repo:Git.commit_paths"),
    ("committed", "flows.sync_registry:commit_journaled"),
]
CASES = [(name, spec, fault) for name, spec in POINTS for fault in ("exception", "sigkill")]


@pytest.fixture
def fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """T01 1.1.0 made on another clone, its tag fetched and its files checked out: two repairs
    (a record, the version), plus another task's staged edit that must survive."""
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.setenv("CLAWBACK_ACTOR", "tester@ci")
    ws = make(tmp_path / "ws")
    clone_with_release(ws, tmp_path)
    sh(ws.root, "fetch", "-q", str(tmp_path / "other"), "main:refs/remotes/other/main",
       "tag", "T01-v1.1.0")
    sh(ws.root, "checkout", "T01-v1.1.0", "--", "tasks/T01/config.yaml")
    (ws.root / "tasks/T02/main.py").write_text("print('staged by the operator')\n")
    sh(ws.root, "add", "tasks/T02/main.py")
    assert len(registry_sync.check(ws).repairs()["T01"]) == 2
    return ws


@pytest.mark.parametrize(("point", "spec", "fault"), CASES,
                         ids=[f"{p}-{f}" for p, _, f in CASES])
def test_a_fault_after_each_step_leaves_the_workspace_as_before(
        fetched: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        point: str, spec: str, fault: str) -> None:
    ws = fetched
    before: dict[str, Any] = world(ws)
    if fault == "sigkill":
        run_child(ws, tmp_path, "from flows.sync_registry import run_sync_registry\n"
                                "run_sync_registry(ROOT)", f"patch({spec!r}, stall_after)")
        assert interrupted(ws.state_dir, "T01-")                 # the journal was left
        undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
        assert not interrupted(ws.state_dir, "T01-")
    else:
        with monkeypatch.context() as patched:
            in_process(spec, failing_after, patched)
            failed = run_sync_registry(str(ws.root))
        why = failed.failed["T01"]        # a task's failure is reported; the run goes on
        assert not failed.ok and "injected" in why and "everything was put back" in why, why
    assert world(ws) == before
    # and the repair then runs as if nothing had happened
    result = run_sync_registry(str(ws.root))
    assert result.ok and [r.task_id for r in result.repaired] == ["T01"]
    assert sh(ws.root, "show", "--name-only", "--format=", "HEAD").split() == ["task_registry.json"]
    assert "tasks/T02/main.py" in sh(ws.root, "diff", "--cached", "--name-only")


def test_a_held_task_lock_fails_that_task_only(fetched: Workspace, tmp_path: Path) -> None:
    from tasks_lib.state.oplocks import task_lock

    ws = fetched
    before = world(ws)
    with task_lock(ws.state_dir, "T01", "test"):
        result = run_sync_registry(str(ws.root))
    assert not result.ok and "locked" in result.failed["T01"]
    assert world(ws) == before
    assert subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "task_registry.json"],
                          cwd=ws.root).returncode == 0
