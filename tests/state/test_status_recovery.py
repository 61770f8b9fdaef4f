"""`clawback status` self-heals: an operation SIGKILLed midway leaves its journal;
the next status finds the task lock free (the writer is dead), undoes the journal, restarts the old
version, audits it and says so. A held lock means the operation is alive: status changes nothing.
All through the real CLI in a subprocess, against real git and real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import tasks_lib.status as status_mod
from clawback.demo import sample
from flows.init import run_init
from tasks_lib.core.workspace import Workspace
from tasks_lib.runtime import process
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.oplocks import task_lock
from tasks_lib.status import workspace_status
from tests.cli.test_cli import clawback
from tests.conftest import T01_13, git, runs_again, world
from tests.state.test_crash import CHILD, ROLLBACK_CHILD, kill_child_at
from tests.test_snapshot import state_of


def audit_entries(ws: Workspace) -> list[dict]:
    return list(AuditLog(ws.state_dir).entries("T01"))


def t01_row(proc: subprocess.CompletedProcess[str]) -> dict:
    doc = json.loads(proc.stdout)
    return next(t for t in doc["result"]["tasks"] if t["id"] == "T01")


def journals(ws: Workspace) -> list[str]:
    folder = ws.state_dir / "journal"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize(("where", "as_json"), [("restore_files", False), ("sync_dependencies", True)])
def test_status_undoes_a_rollback_killed_midway(story, tmp_path, where: str, as_json: bool) -> None:
    """Killed after stop + restore-files (text output), and after stop + restore-files + registry +
    environment switch (--json output)."""
    ws, old_pid = story
    before = world(ws)
    audited = len(audit_entries(ws))
    kill_child_at(ROLLBACK_CHILD, where, ws, tmp_path)

    # half-made, as the kill left it
    assert journals(ws) == ["T01-rollback.json"]
    assert process.run_state(ws, ws.task("T01")).running is False
    assert (ws.root / "tasks/T01/main.py").read_text() == sample.T01_MAIN.format(version="1.2.0")
    assert not (ws.root / "tasks/T01/added_in_13.py").exists()
    if where == "sync_dependencies":
        assert ws.task("T01").version == "1.2.0"
        assert world(ws)["env"] != before["env"]
    backups = git(ws, "for-each-ref", "--format=%(refname)", "refs/clawback/backups/T01/").split()
    assert len(backups) == 1
    expected_undone = [f"restore T01's files from {backups[0]}", "start T01 1.3.0 again"]
    if where == "sync_dependencies":
        expected_undone = ["switch T01's environment back", "restore T01's entry in task_registry.json",
                           *expected_undone]
    (ws.root / "tasks/T01/logs/runs.jsonl").unlink(missing_ok=True)

    proc = clawback("status", "--workspace", str(ws.root), *(["--json"] if as_json else []))
    assert proc.returncode == 0, proc.stderr + proc.stdout

    # it says what it undid
    if as_json:
        row = t01_row(proc)
        assert row["version"] == "1.3.0" and row["running"] is True
        assert row["note"] == "interrupted rollback undone"
        [found] = row["interrupted"]
        assert (found["action"], found["from_version"], found["to_version"], found["outcome"]) == \
            ("rollback", "1.3.0", "1.2.0", "undone")
        assert found["undone"] == expected_undone and found["not_undone"] == []
        assert found["journal"].endswith(".clawback/journal/T01-rollback.json")
    else:
        out = proc.stdout
        assert re.search(r"^T01\s+1\.3\.0\s+active\s+yes\s.*running \(\d+\).*interrupted rollback undone$",
                         out, re.M), out
        assert re.search(r"^  T01 rollback 1\.3\.0 -> 1\.2\.0 \(pid \d+\): its process was gone; undone now",
                         out, re.M), out
        assert re.findall(r"^    put back: (.*)$", out, re.M) == expected_undone

    # everything is back to 1.3.0: files, registry entry, environment link, HEAD, tags, index
    assert world(ws) == before
    assert ws.task("T01").version == "1.3.0"
    # the old version runs again, as a new process
    state = process.run_state(ws, ws.task("T01"))
    assert state.running and state.pid not in (None, old_pid)
    assert runs_again(ws, "1.3.0")
    assert json.loads((ws.state_dir / "run/T01.json").read_text())["version"] == "1.3.0"
    # the backup ref is kept and holds 1.3.0's files
    assert git(ws, "for-each-ref", "--format=%(refname)", "refs/clawback/backups/T01/").split() == backups
    assert git(ws, "show", f"{backups[0]}:tasks/T01/main.py") == T01_13
    # audited
    new = audit_entries(ws)[audited:]
    assert [(e["action"], e["result"], e["from"], e["to"]) for e in new] == \
        [("recover-interrupted", "ok", "1.3.0", "1.2.0")]
    assert new[0]["details"]["found_by"] == "status"
    assert new[0]["details"]["undone"] == expected_undone
    assert journals(ws) == []

    # a second status finds nothing interrupted and does nothing
    again = clawback("status", "--json", "--workspace", str(ws.root))
    assert again.returncode == 0, again.stderr
    row = t01_row(again)
    assert row["interrupted"] == [] and "interrupted" not in row["note"]
    assert row["pid"] == state.pid
    assert len(audit_entries(ws)) == audited + 1


def test_status_leaves_a_locked_task_alone_and_read_only_only_reports(ws: Workspace, tmp_path) -> None:
    run_init(str(ws.root))
    (ws.root / "tasks/T01/new.py").write_text("print('new')\n")
    before = state_of(ws)
    kill_child_at(CHILD, "tag_snapshot", ws, tmp_path)
    journal = ws.state_dir / "journal/T01-snapshot.json"
    raw = journal.read_bytes()
    half = state_of(ws)
    assert half != before and ws.git.tag_info("T01-v1.2.0") is not None  # a tag without its audit
    audited = len(audit_entries(ws))
    root = str(ws.root)

    def unchanged() -> None:
        assert state_of(ws) == half
        assert journal.read_bytes() == raw
        assert len(audit_entries(ws)) == audited

    # another process holds the task lock: the operation counts as running; nothing is touched
    with task_lock(ws.state_dir, "T01", "rollback"):
        proc = clawback("status", "--json", "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    row = t01_row(proc)
    assert row["note"] == "snapshot in progress" and row["version"] == "1.2.0"
    [found] = row["interrupted"]
    assert (found["outcome"], found["action"], found["from_version"], found["to_version"]) == \
        ("in-progress", "snapshot", "1.1.0", "1.2.0")
    assert f"task T01 is locked by pid {os.getpid()}" in found["detail"]
    assert found["undone"] == []
    unchanged()

    # --read-only: reports, takes no lock, changes nothing
    proc = clawback("status", "--read-only", "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^  T01 snapshot 1\.1\.0 -> 1\.2\.0 \(pid \d+\): interrupted; not undone$",
                     proc.stdout, re.M), proc.stdout
    assert "is gone; `clawback status` without --read-only" in proc.stdout
    unchanged()

    # status of another task leaves T01's journal for later
    proc = clawback("status", "--task", "T02", "--json", "--workspace", root)
    assert proc.returncode == 0 and [t["id"] for t in json.loads(proc.stdout)["result"]["tasks"]] == ["T02"]
    unchanged()

    # the lock is free: status undoes it, and even then never imports Prefect
    code = ("import sys; from clawback.cli import main; "
            f"rc = main(['status', '--workspace', {root!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "T01 snapshot 1.1.0 -> 1.2.0" in proc.stdout and "undone now" in proc.stdout
    assert "    put back: delete tag T01-v1.2.0" in proc.stdout
    assert state_of(ws) == before
    assert ws.git.tag_info("T01-v1.2.0") is None and journals(ws) == []
    assert audit_entries(ws)[-1]["action"] == "recover-interrupted"


def test_status_exit_1_when_the_undo_cannot_complete(ws: Workspace, tmp_path) -> None:
    """Killed after its commit, then someone commits on top: HEAD cannot be moved back safely."""
    run_init(str(ws.root))
    (ws.root / "tasks/T01/new.py").write_text("print('new')\n")
    before = state_of(ws)
    kill_child_at(CHILD, "commit_task", ws, tmp_path)
    git(ws, "commit", "-q", "--no-verify", "--allow-empty", "-m", "someone else's commit")
    theirs = git(ws, "rev-parse", "HEAD")
    root = str(ws.root)

    proc = clawback("status", "--workspace", root)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    out = proc.stdout
    assert re.search(r"^  T01 snapshot 1\.1\.0 -> 1\.2\.0 \(pid \d+\): its process was gone; "
                     r"the undo COULD NOT COMPLETE$", out, re.M), out
    assert re.search(r"^    NOT UNDONE: move HEAD back: HEAD moved since our commit [0-9a-f]{12}", out, re.M), out
    assert "    put back: restore T01's entry in task_registry.json" in out
    kept = ws.state_dir / "journal/T01-snapshot.failed.json"
    assert f"    journal: {kept}" in out and kept.exists()
    assert "next: fix what could not be undone by hand" in out
    assert git(ws, "rev-parse", "HEAD") == theirs                       # never forced
    assert (ws.root / "task_registry.json").read_bytes() == before["registry"]  # the rest was undone
    assert (ws.root / "tasks/T01/config.yaml").read_bytes() == before["config"]
    entry = audit_entries(ws)[-1]
    assert (entry["action"], entry["result"]) == ("recover-interrupted", "failed")
    assert entry["details"]["journal_kept"] == str(kept)

    # until a person deals with it, every status says so and exits 1
    proc = clawback("status", "--json", "--workspace", root)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1
    [found] = t01_row(proc)["interrupted"]
    assert (found["outcome"], found["journal"]) == ("undo-failed-earlier", str(kept))
    kept.unlink()
    proc = clawback("status", "--json", "--workspace", root)
    assert proc.returncode == 0 and t01_row(proc)["interrupted"] == []


def test_status_without_journals_takes_no_lock(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    run_init(str(ws.root))
    assert (ws.state_dir / "journal").is_dir() and journals(ws) == []

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("status took a lock or opened the audit log without a journal")

    for name in ("task_lock", "workspace_lock", "AuditLog"):
        monkeypatch.setattr(status_mod, name, refuse)
    rows = workspace_status(ws, repair=True)
    assert [(r.id, r.version, r.interrupted) for r in rows] == \
        [("T01", "1.1.0", ()), ("T02", "2.0.1", ()), ("T99", "0.0.0", ())]
