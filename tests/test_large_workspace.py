"""The generated large workspace the issue-12 tools are checked on is what it claims to be."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tasks_lib.core.workspace import Workspace


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def test_the_large_workspace_has_its_promised_shape(large_template: Path) -> None:
    root = large_template
    tracked = _git(root, "ls-files", "-z").split("\0")
    assert len([p for p in tracked if p]) >= 6000
    reg = json.loads((root / "task_registry.json").read_text(encoding="utf-8"))
    assert isinstance(reg["tasks"], list)
    assert {t["id"] for t in reg["tasks"] if t.get("status") == "deleted"} == {"T98", "T99"}
    assert (root / "tasks/T98/main.py").exists()            # a deleted task's files still there
    links = [line for line in _git(root, "ls-files", "-s").splitlines()
             if line.startswith("120000")]
    assert {line.split("\t")[1] for line in links} == {"tasks/T01/latest_positions.json",
                                                       "tasks/T02/today"}
    assert any("因子" in p for p in tracked)
    head_config = (root / "tasks/T03/config.yaml").read_text(encoding="utf-8")
    assert "${TUSHARE_TOKEN}" in head_config and "8700" not in head_config
    assert "8700" in _git(root, "log", "-p", "--", "tasks/T03/config.yaml")  # only in history
    ws = Workspace(root)
    assert {t.id for t in ws.scan().tasks} >= {"T01", "T02", "T03"}


def test_the_large_workspace_is_adopted_and_verifies(large_template: Path) -> None:
    tags = set(_git(large_template, "tag", "--list").split())
    assert {"T01-v1.1.0", "T02-v2.0.1", "T03-v1.0.0"} <= tags
    run = subprocess.run([sys.executable, "-m", "clawback", "verify-snapshot", "--workspace",
                          str(large_template), "--task", "T01", "--version", "1.1.0", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "8700" not in _git(large_template, "tag", "-l", "--format=%(contents)", "T03-v*")
