"""Backup and exact restore of one task's versioned files on real repositories."""

from __future__ import annotations

import hashlib
import os

import pytest

from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import parse_tag_message
from tasks_lib.gitops.restore import Scope, backup, plan_restore, restore_tree
from tests.conftest import git


@pytest.fixture
def versions(ws: Workspace) -> Workspace:
    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "run.sh").write_text("#!/bin/sh\necho v1.2\n")
    (t01 / "run.sh").chmod(0o755)
    os.symlink("main.py", t01 / "entry.py")
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.2.0
    (t01 / "main.py").write_text("print('1.3.0')\n")
    (t01 / "added_in_13").mkdir()
    (t01 / "added_in_13/x.py").write_text("x = 13\n")
    (t01 / "run.sh").chmod(0o644)
    (t01 / "entry.py").unlink()
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.3.0
    return ws


def scope(ws: Workspace) -> Scope:
    task = ws.task("T01")
    return Scope(ws.root, task.location or "", task.state)


def sha(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_to_an_earlier_version_is_exact_and_isolated(versions: Workspace) -> None:
    ws = versions
    t01 = ws.root / "tasks/T01"
    (t01 / "state/positions.json").write_text('{"live": true}\n')
    (ws.root / "tasks/T02/config.yaml").write_text("version: 2.0.1\n# unsaved\n")
    head, index = git(ws, "rev-parse", "HEAD"), git(ws, "ls-files", "-s")
    snap = parse_tag_message(ws.git.tag_message("T01-v1.2.0")).snapshot
    planned = plan_restore(ws.git, scope(ws), snap.git_commit)
    done = restore_tree(ws.git, scope(ws), snap.git_commit)
    assert done == planned and "tasks/T01/added_in_13/x.py" in done.removed
    for f in snap.files:
        p = ws.root / f.path
        if f.mode == "120000":
            assert p.is_symlink() and os.readlink(p) == "main.py"
        else:
            assert sha(p) == f.checksum
            assert bool(p.stat().st_mode & 0o111) == (f.mode == "100755")
    assert not (t01 / "added_in_13").exists()
    assert (t01 / "state/positions.json").read_text() == '{"live": true}\n'
    assert (ws.root / "tasks/T02/config.yaml").read_text() == "version: 2.0.1\n# unsaved\n"
    assert git(ws, "rev-parse", "HEAD") == head and git(ws, "ls-files", "-s") == index
    assert restore_tree(ws.git, scope(ws), snap.git_commit).empty  # idempotent


def test_backup_keeps_uncommitted_work_and_restores_it(versions: Workspace) -> None:
    ws = versions
    t01 = ws.root / "tasks/T01"
    (t01 / "main.py").write_text("print('uncommitted edit')\n")
    (t01 / "scratch.py").write_text("untracked = True\n")
    (t01 / "config.yaml").unlink()
    b = backup(ws.git, scope(ws), "T01", "before rollback", ws.state_dir / "tmp")
    assert b.ref.startswith("refs/clawback/backups/T01/") and ws.git.rev(b.ref) == b.commit
    assert "tasks/T01/scratch.py" in b.files and not any("state/" in f for f in b.files)
    snap = parse_tag_message(ws.git.tag_message("T01-v1.2.0")).snapshot
    restore_tree(ws.git, scope(ws), snap.git_commit)
    assert (t01 / "config.yaml").exists() and not (t01 / "scratch.py").exists()
    restore_tree(ws.git, scope(ws), b.commit)                 # undo: exactly as before
    assert (t01 / "main.py").read_text() == "print('uncommitted edit')\n"
    assert (t01 / "scratch.py").read_text() == "untracked = True\n"
    assert not (t01 / "config.yaml").exists()
    assert git(ws, "for-each-ref", "--format=%(refname)", "refs/clawback/").strip() == b.ref


def test_a_file_that_became_a_directory_and_back(ws: Workspace, monkeypatch) -> None:
    """``x`` is a file in one version and a directory ``x/y`` in the next: a rollback each way
    removes what stands in the way first, then writes (nothing half-written, nothing refused)."""
    import flows.rollback as fr

    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "x").write_text("a file\n")
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.2.0: x is a file
    (t01 / "x").unlink()
    (t01 / "x").mkdir()
    (t01 / "x/y").write_text("a file in a directory\n")
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.3.0: x/y
    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert (t01 / "x").read_text() == "a file\n"
    fr.run_rollback(str(ws.root), "T01", "1.3.0")
    assert (t01 / "x/y").read_text() == "a file in a directory\n"
