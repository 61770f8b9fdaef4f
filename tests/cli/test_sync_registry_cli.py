"""``clawback sync-registry`` as a process: exit codes 0/1/2, one line per mismatch, a stable
--json, --check reads only (byte for byte, .git and .clawback included) and never imports
Prefect, hostile --task values refused with nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks_lib.core.workspace import Workspace
from tests.cli.test_cli import clawback, no_traceback
from tests.conftest import tree
from tests.test_sync_registry import make, sh


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.setenv("CLAWBACK_ACTOR", "tester@ci")
    return make(tmp_path / "ws")


def test_check_agrees_then_reports_one_line_per_mismatch(small: Workspace) -> None:
    root = str(small.root)
    proc = clawback("sync-registry", "--check", "--workspace", root)
    assert proc.returncode == 0 and "agree (2 tasks)" in proc.stdout and proc.stderr == ""
    sh(small.root, "tag", "-d", "T02-v1.0.0")
    cfg = small.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("1.0.0", "1.0.1"), encoding="utf-8")
    proc = clawback("sync-registry", "--check", "--workspace", root)
    assert proc.returncode == 1 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "T01 version-mismatch: registry 1.0.0, config.yaml 1.0.1 -> fix: clawback snapshot "
        "--task T01 --version 1.0.1",
        "T01 not-snapshotted: 1.0.1 has no tag T01-v1.0.1 -> fix: clawback snapshot --task T01 "
        "--version 1.0.1",
        "T02 not-snapshotted: 1.0.0 has no tag T02-v1.0.0 -> fix: clawback snapshot --task T02",
        "T02 record-tag-missing: snapshots[0] records T02-v1.0.0, which does not exist -> fix: "
        "remove the record from task_registry.json",
    ] and lines[4] == "4 mismatches" and len(lines) == 5
    doc = json.loads(clawback("sync-registry", "--check", "--json", "--workspace", root).stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["command"] == "sync-registry"
    result = doc["result"]
    assert set(result) == {"ok", "tasks", "skipped", "findings"} and result["skipped"] == ["T99"]
    assert set(result["findings"][0]) == {"kind", "task", "detail", "fix", "repair", "tag",
                                          "version"}


def test_check_changes_nothing_and_never_imports_prefect(small: Workspace, tmp_path: Path) -> None:
    sh(small.root, "tag", "-d", "T02-v1.0.0")
    (small.root / "tasks/T02/main.py").write_text("print('staged')\n")
    sh(small.root, "add", "tasks/T02/main.py")
    before = tree(small.root)
    code = ("import sys; from clawback.cli import main; "
            f"rc = main(['sync-registry', '--check', '--workspace', {str(small.root)!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1, proc.stderr
    for _ in range(2):
        assert clawback("sync-registry", "--check", "--json", "--workspace",
                        str(small.root)).returncode == 1
    assert tree(small.root) == before


@pytest.mark.parametrize(("args", "words"), [
    (["--task", "../x"], "letters, digits"),
    (["--task=-rf"], "letters, digits"),
    (["--task", "1.2.0;rm -rf ~"], "letters, digits"),
    (["--task", "T01\n"], "letters, digits"),
    (["--task", "T42"], "unknown task T42"),
    (["--task", "T99"], "deleted"),
    (["--bogus"], "unrecognized"),
])
@pytest.mark.parametrize("check", [True, False])
def test_bad_input_exits_2_and_changes_nothing(small: Workspace, args: list[str], words: str,
                                               check: bool) -> None:
    sh(small.root, "tag", "-d", "T02-v1.0.0")
    before = tree(small.root)
    proc = clawback("sync-registry", *(["--check"] if check else []), *args,
                    "--workspace", str(small.root))
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    no_traceback(proc)
    assert tree(small.root) == before


def test_a_malformed_registry_is_bad_input(small: Workspace) -> None:
    small.registry_path.write_text('{"tasks": [ {"id": "T01",, } ]}')
    proc = clawback("sync-registry", "--check", "--json", "--workspace", str(small.root))
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["type"] == "MalformedFile"


def test_repair_from_the_cli_then_check_agrees(small: Workspace, tmp_path: Path) -> None:
    from tests.test_sync_registry import clone_with_release

    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "main:refs/remotes/other/main",
       "tag", "T01-v1.1.0")
    root = str(small.root)
    proc = clawback("sync-registry", "--check", "--workspace", root)
    assert proc.returncode == 1 and "repaired by `clawback sync-registry`" in proc.stdout
    proc = clawback("sync-registry", "--json", "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    assert doc["ok"] and doc["repaired"][0]["task"] == "T01"
    assert doc["repaired"][0]["repairs"][0]["action"] == "add-record"
    assert clawback("sync-registry", "--check", "--workspace", root).returncode == 0
    proc = clawback("sync-registry", "--workspace", root)          # idempotent
    assert proc.returncode == 0 and "agree" in proc.stdout
