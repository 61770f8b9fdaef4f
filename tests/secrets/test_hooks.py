"""The pre-commit hook's secret check: real git runs it on a real commit (installing, chaining and
the other hooks: tests/gitops/test_githooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.init import run_init
from tasks_lib import githooks
from tasks_lib.core.workspace import Workspace
from tests.conftest import git


def commit(ws: Workspace, *paths: str) -> subprocess.CompletedProcess[str]:
    subprocess.run(["git", "add", "--", *paths], cwd=ws.root, check=True)
    return subprocess.run(["git", "commit", "-m", "agent edit"], cwd=ws.root, capture_output=True,
                          text=True, check=False)


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    result = run_init(str(ws.root))
    assert result.hooks and result.hooks[0].name == "pre-commit" and result.hooks[0].installed
    return ws


def test_hook_refuses_a_staged_plaintext_secret_without_showing_it(adopted: Workspace) -> None:
    cfg = adopted.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + "broker:\n  password: hunter2-very-secret\n")
    head = git(adopted, "rev-parse", "HEAD")
    proc = commit(adopted, "tasks/T02/config.yaml")
    assert proc.returncode != 0
    assert "tasks/T02/config.yaml: broker.password" in proc.stderr and "--no-verify" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert git(adopted, "rev-parse", "HEAD") == head


def test_hook_checks_the_staged_content_not_the_working_tree(adopted: Workspace) -> None:
    cfg = adopted.root / "tasks/T02/config.yaml"
    clean = cfg.read_text() + "note: fine\n"
    cfg.write_text(clean)
    subprocess.run(["git", "add", "--", str(cfg)], cwd=adopted.root, check=True)
    cfg.write_text(clean + "token: 8700aa11bb22\n")  # unstaged: not part of this commit
    proc = subprocess.run(["git", "commit", "-m", "clean"], cwd=adopted.root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_hook_refuses_a_secret_in_the_registry_entry(adopted: Workspace) -> None:
    reg = adopted.root / "task_registry.json"
    reg.write_text(reg.read_text().replace('"owner": "ops"', '"owner": "ops", "api_key": "sk-live-1234567890abcdef"'))
    proc = commit(adopted, "task_registry.json")
    assert proc.returncode != 0 and "T02.api_key" in proc.stderr and "sk-live" not in proc.stderr


def test_existing_foreign_hook_is_kept_and_chained(ws: Workspace) -> None:
    hook = ws.root / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    result = githooks.apply(ws, sys.executable)
    assert result[0].installed and result[0].action == "chained"
    assert hook.with_name("pre-commit.pre-clawback").read_text() == "#!/bin/sh\nexit 0\n"


def test_hook_with_a_vanished_interpreter_does_not_block(ws: Workspace, tmp_path: Path) -> None:
    githooks.apply(ws, str(tmp_path / "gone" / "python"))
    cfg = ws.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + "x: 1\n")
    proc = commit(ws, "tasks/T02/config.yaml")
    assert proc.returncode == 0 and "secret check skipped" in proc.stderr


@pytest.mark.parametrize("where", ["tasks/T01", "hooks-link"])
def test_a_hooks_path_among_the_versioned_files_is_never_written(ws: Workspace, where: str) -> None:
    if where == "hooks-link":
        os.symlink("tasks/T01", ws.root / "hooks-link")
    git(ws, "config", "core.hooksPath", where)
    before = sorted(p.name for p in (ws.root / "tasks/T01").iterdir())
    result = githooks.apply(ws, sys.executable)
    assert not any(h.installed for h in result) and "versioned files" in result[0].reason
    assert sorted(p.name for p in (ws.root / "tasks/T01").iterdir()) == before


def test_a_fifo_where_the_hook_would_be_is_kept(ws: Workspace) -> None:
    hook = ws.root / ".git/hooks/pre-commit"
    hook.parent.mkdir(exist_ok=True)
    os.mkfifo(hook)
    result = githooks.apply(ws, sys.executable)                 # (never blocks reading it)
    assert not result[0].installed and result[0].action == "kept"
