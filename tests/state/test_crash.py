"""A snapshot killed with SIGKILL at any point leaves a journal; the next operation on the task
undoes it exactly, and status reports it meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.snapshot as fs
from flows.init import run_init
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.recovery import interrupted, undo_interrupted
from tasks_lib.status import workspace_status
from tests.test_snapshot import state_of

CHILD = '''
import pathlib, sys, time
import flows.snapshot as fs
from tasks_lib.gitops import repo as gitrepo

where, marker, root = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]

def stall():
    marker.write_text("ready")
    time.sleep(600)

def after(real):
    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        stall()
        return result
    return wrapped

if where == "inside-commit":  # HEAD has moved, the journal does not know the new commit yet
    gitrepo.Git.commit_paths = after(gitrepo.Git.commit_paths)
else:
    setattr(fs, where, after(getattr(fs, where)))
fs.run_snapshot(root, "T01", bump="minor", message="killed midway")
'''


def kill_child_at(code: str, where: str, ws: Workspace, tmp_path: Path) -> None:
    """Run ``code`` in a child process until it reaches ``where``, then SIGKILL it."""
    script, marker = tmp_path / "child.py", tmp_path / "ready"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent.parent)}
    child = subprocess.Popen([sys.executable, str(script), where, str(marker), str(ws.root)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "child never reached the kill point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


@pytest.mark.parametrize("where", ["bump_version", "sync_environment", "inside-commit",
                                   "commit_task", "checksum_files", "tag_snapshot"])
def test_sigkill_midway_is_undone_by_the_next_operation(ws: Workspace, tmp_path: Path, where: str) -> None:
    run_init(str(ws.root))
    (ws.root / "tasks/T01/requirements.txt").write_text("clawdemo-signals>=1.1\n")
    (ws.root / "tasks/T01/new.py").write_text("print('new')\n")
    before = state_of(ws)
    kill_child_at(CHILD, where, ws, tmp_path)
    assert interrupted(ws.state_dir, "T01-")
    half = state_of(ws)
    assert half["registry"] != before["registry"]  # every kill point is past the bump
    if where in ("inside-commit", "commit_task", "checksum_files", "tag_snapshot"):
        assert half["head"] != before["head"]
    if where == "tag_snapshot":
        assert ws.git.tag_info("T01-v1.2.0") is not None  # a tag without its audit: half-made
    t01 = next(t for t in workspace_status(ws) if t.id == "T01")
    assert "interrupted" in t01.note

    undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
    assert state_of(ws) == before
    assert ws.git.tag_info("T01-v1.2.0") is None and not interrupted(ws.state_dir, "T01-")
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["action"] == "recover-interrupted" and entry["result"] == "ok"
    assert fs.run_snapshot(str(ws.root), "T01", bump="minor").version == "1.2.0"


ROLLBACK_CHILD = CHILD.replace("import flows.snapshot as fs", "import flows.rollback as fs").replace(
    'fs.run_snapshot(root, "T01", bump="minor", message="killed midway")',
    'fs.run_rollback(root, "T01", "1.2.0", reason="killed midway")')


@pytest.mark.parametrize("where", ["stop_task", "restore_files", "sync_dependencies",
                                   "commit_and_tag", "start_task"])
def test_sigkill_mid_rollback_is_undone_and_the_old_version_runs_again(
        story, tmp_path: Path, where: str) -> None:
    from tasks_lib.runtime import process
    from tests.conftest import runs_again, world

    ws, _ = story
    before = world(ws)
    kill_child_at(ROLLBACK_CHILD, where, ws, tmp_path)
    assert world(ws) != before                                   # half-made: stopped at least
    (ws.root / "tasks/T01/logs/runs.jsonl").unlink(missing_ok=True)
    undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
    assert world(ws) == before
    assert runs_again(ws, "1.3.0")                       # the old version runs again
    assert process.run_state(ws, ws.task("T01")).running


@pytest.mark.parametrize("operation", ["rollback", "snapshot"])
def test_undo_after_a_kill_keeps_registry_changes_made_meanwhile(
        story, tmp_path: Path, operation: str) -> None:
    """Between the kill and the undo, someone edits T02's registry entry (uncommitted): the undo
    puts back T01's entry only, and T02's edit is kept."""
    import json

    from tasks_lib.formats.registry import Registry

    ws, _ = story
    reg_path = ws.root / "task_registry.json"
    t01_before = Registry.load(reg_path).entry("T01")
    if operation == "rollback":
        kill_child_at(ROLLBACK_CHILD, "sync_dependencies", ws, tmp_path)
    else:
        kill_child_at(CHILD, "sync_environment", ws, tmp_path)
    assert Registry.load(reg_path).entry("T01") != t01_before    # the killed run changed it
    reg = Registry.load(reg_path)
    t02 = reg.entry("T02")
    t02["description"] = "edited by the operator meanwhile"
    reg.set_entry("T02", t02)
    reg.save()

    undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
    after = Registry.load(reg_path)
    assert after.entry("T01") == t01_before
    assert after.entry("T02")["description"] == "edited by the operator meanwhile"
    json.loads(reg_path.read_text())                                # still one valid document
