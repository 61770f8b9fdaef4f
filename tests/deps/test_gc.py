"""``clawback gc`` (tasks_lib/deps/gc.py): real workspaces, real environments built by uv from
the local wheelhouse, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawback.cli import main
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.deps import gc
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.oplocks import task_lock


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")


@pytest.fixture
def three(ws: Workspace) -> dict[str, Path]:
    """T01 at 1.1.0 (init: stable), 1.2.0 and 1.3.0 (current), each with its own environment."""
    run_init(str(ws.root))
    envs = {"1.1.0": deps.current_env(ws.state_dir, "T01")}
    req = ws.root / "tasks/T01/requirements.txt"
    for version, text in (("1.2.0", "clawdemo-signals>=1.1\n"),
                          ("1.3.0", "clawdemo-signals>=1.1\nclawdemo-risk\n")):
        req.write_text(text)
        run_snapshot(str(ws.root), "T01", version=version, message=version)
        envs[version] = deps.current_env(ws.state_dir, "T01")
    assert len({str(p) for p in envs.values()}) == 3 and all(p and p.is_dir() for p in envs.values())
    return envs


def cli(ws: Workspace, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["gc", *args, "--workspace", str(ws.root), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_dry_run_lists_then_gc_removes_only_the_unused(ws: Workspace, three, capsys) -> None:
    code, doc = cli(ws, capsys, "--keep", "1", "--dry-run")
    assert code == 0, doc
    gone = [e["path"] for e in doc["result"]["removed"]]
    assert gone == [str(three["1.2.0"])] and doc["result"]["removed"][0]["bytes"] > 0
    assert three["1.2.0"].is_dir()                                     # dry run: nothing changed
    assert not [e for e in AuditLog(ws.state_dir).entries() if e["action"] == "gc"]
    kept = {e["path"]: e["why"] for e in doc["result"]["kept"]}
    assert "stable" in kept[str(three["1.1.0"])]
    assert "current" in kept[str(three["1.3.0"])]

    code, doc = cli(ws, capsys, "--keep", "1")
    assert code == 0 and doc["result"]["bytes"] > 0
    assert not three["1.2.0"].exists() and three["1.1.0"].is_dir() and three["1.3.0"].is_dir()
    assert deps.current_env(ws.state_dir, "T01") == three["1.3.0"]
    assert not [p for p in three["1.3.0"].parent.iterdir() if p.name.startswith(".gc-")]
    entry = [e for e in AuditLog(ws.state_dir).entries() if e["action"] == "gc"][-1]
    assert entry["result"] == "ok" and entry["details"]["removed"] == [
        os.path.relpath(three["1.2.0"], ws.state_dir)]
    assert AuditLog(ws.state_dir).verify().ok


def test_default_keep_and_text_output(ws: Workspace, three, capsys) -> None:
    assert main(["gc", "--dry-run", "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "would remove 0 environment(s)" in out and "one of the 5 newest versions" in out
    assert three["1.2.0"].is_dir()


def test_an_environment_a_process_runs_from_is_kept(ws: Workspace, three) -> None:
    python = three["1.2.0"] / "bin" / "python"
    proc = subprocess.Popen([str(python), "-c", "import time; time.sleep(60)"])
    try:
        result = gc.collect(ws, 1)
        assert not result.removed and three["1.2.0"].is_dir()
        assert f"in use by pid {proc.pid}" in {e.why for e in result.kept}
    finally:
        proc.kill()
        proc.wait()
    assert [e.path for e in gc.collect(ws, 1).removed] == [three["1.2.0"]]


def test_incomplete_links_and_other_tasks_are_left_alone(ws: Workspace, three, tmp_path) -> None:
    root = deps.env_root(ws.state_dir, "T01")
    partial = root / "0123456789abcdef"
    partial.mkdir()                                                    # a build in progress
    outside = tmp_path / "outside"
    (outside / "bin").mkdir(parents=True)
    (outside / "keep.txt").write_text("mine")
    (root / "fedcba9876543210").symlink_to(outside)
    orphan = ws.state_dir / "envs" / "T42" / "0000000000000000"
    orphan.mkdir(parents=True)
    result = gc.collect(ws, 0)
    assert [e.path for e in result.removed] == [three["1.2.0"]]
    assert partial.is_dir() and (outside / "keep.txt").read_text() == "mine" and orphan.is_dir()
    assert any("T42" in s for s in result.skipped)


def test_a_linked_envs_folder_is_refused(ws: Workspace, three, tmp_path, capsys) -> None:
    real = ws.state_dir / "envs" / "T01"
    moved = tmp_path / "elsewhere"
    real.rename(moved)
    real.symlink_to(moved)
    code, doc = cli(ws, capsys, "--keep", "0")
    assert code == 3 and "symlink" in doc["error"]["message"]
    assert (moved / three["1.2.0"].name).is_dir()


def test_a_kill_mid_removal_leaves_nothing_reusable(ws: Workspace, three) -> None:
    """A removal renames first: a half-deleted environment is never `<digest16>` again, and the
    next gc removes what a killed one left."""
    leftover = three["1.2.0"].with_name(".gc-" + three["1.2.0"].name + "-dead")
    three["1.2.0"].rename(leftover)
    result = gc.collect(ws, 5)
    assert [e.path for e in result.removed] == [leftover] and not leftover.exists()


def test_locks_and_interrupted_operations_refuse(ws: Workspace, three, capsys) -> None:
    with task_lock(ws.state_dir, "T01", "rollback"):
        code, doc = cli(ws, capsys, "--keep", "0")
    assert code == 3 and "locked" in doc["error"]["message"]
    journal = ws.state_dir / "journal" / "T01-rollback.json"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text("{}")
    code, doc = cli(ws, capsys, "--keep", "0")
    assert code == 3 and "clawback status" in doc["error"]["hint"]
    assert three["1.2.0"].is_dir()


@pytest.mark.parametrize("keep", ["-1", "five", "10001", "1.5"])
def test_bad_keep_is_bad_input_with_a_hint(ws: Workspace, capsys, keep: str) -> None:
    run_init(str(ws.root))
    code, doc = cli(ws, capsys, "--keep", keep)
    assert code == 2 and doc["error"]["type"] == "BadInput" and "--keep 5" in doc["error"]["hint"]
    with pytest.raises(BadInput):
        gc.keep_count(keep)


def test_gc_of_one_task_and_unknown_task(ws: Workspace, three, capsys) -> None:
    code, doc = cli(ws, capsys, "--task", "T02", "--keep", "0")
    assert code == 0 and not doc["result"]["removed"] and three["1.2.0"].is_dir()
    code, doc = cli(ws, capsys, "--task", "T42")
    assert code == 2 and "unknown task" in doc["error"]["message"]


def test_gc_does_not_import_prefect(ws: Workspace) -> None:
    run_init(str(ws.root))
    code = ("import sys; from clawback.cli import main; "
            f"rc = main(['gc', '--workspace', {str(ws.root)!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
