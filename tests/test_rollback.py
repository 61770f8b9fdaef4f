"""Rollback on real git, real virtual environments and real processes: exact, isolated,
verified, and undone on any failure (the plain path; the Prefect path is in test_flows.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

import flows.rollback as fr
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput, Conflict, NotFound, OperationFailed, VerificationFailed
from tasks_lib.deps import envs as deps
from tasks_lib.formats.manifest import parse_tag_message
from tasks_lib.rollback import verify_live
from tasks_lib.runtime import process
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.oplocks import task_lock
from tests.conftest import failing_after, git, py, runs_again, world


def test_the_seed_story_is_exact_isolated_and_verified(story) -> None:
    ws, old_pid = story
    assert runs_again(ws, "1.3.0")
    (ws.root / "tasks/T02/config.yaml").write_text("version: 2.0.1\n# operator's unsaved edit\n")
    (ws.root / "tasks/T01/state/positions.json").write_text('{"live": 42}\n')
    (ws.root / "tasks/T01/logs/runs.jsonl").unlink()
    # someone installs an extra package into the cached 1.2.0 environment by hand
    lock12 = deps.Lock.from_text(parse_tag_message(ws.git.tag_message("T01-v1.2.0")).snapshot.python_lock)
    env12 = deps.env_root(ws.state_dir, "T01") / lock12.digest_hex[:16] / "bin" / "python"
    subprocess.run([deps.uv_bin(), "pip", "install", "--python", str(env12), "--no-deps",
                    "clawdemo-risk"], check=True, capture_output=True)
    assert "clawdemo-risk==0.1.0" in deps.installed(env12)
    r = fr.run_rollback(str(ws.root), "T01", "1.2.0", reason="error rate 0.3 > 0.1")
    assert (r.from_version, r.to_version, r.tag) == ("1.3.0", "1.2.0", "T01-v1.2.0-rollback-from-v1.3.0")
    assert r.pid and r.pid != old_pid and r.was_running
    assert runs_again(ws, "1.2.0")                              # new process, old code
    assert all(lv.ok for lv in verify_live(ws, "T01", "1.2.0"))          # byte-exact etc.
    assert deps.installed(py(ws)) == ("clawdemo-signals==1.0.0",)        # extras removed
    assert not (ws.root / "tasks/T01/added_in_13.py").exists()
    assert (ws.root / "tasks/T02/config.yaml").read_text() == "version: 2.0.1\n# operator's unsaved edit\n"
    assert (ws.root / "tasks/T01/state/positions.json").read_text() == '{"live": 42}\n'
    assert ws.git.tag_info("T01-v1.3.0") is not None                    # the bad version stays
    changed = sorted(git(ws, "diff", "--name-only", "HEAD~1", "HEAD").split())
    assert changed == ["task_registry.json", "tasks/T01/added_in_13.py", "tasks/T01/config.yaml",
                       "tasks/T01/main.py", "tasks/T01/requirements.txt"]
    entry = json.loads((ws.root / "task_registry.json").read_text())["tasks"][0]
    assert entry["version"] == "1.2.0"
    assert entry["rollback_history"][-1]["reason"] == "error rate 0.3 > 0.1"
    assert [s.get("quarantined") for s in entry["snapshots"] if s["version"] == "1.3.0"] == [True]
    assert ws.git.rev(r.backup_ref)
    assert list((ws.state_dir / "reports").glob("rollback-T01-*.md"))
    # a second rollback of the same pair gets a suffix, never overwrites
    run_snapshot(str(ws.root), "T01", version="1.3.1")
    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert ws.git.tag_info("T01-v1.2.0-rollback-from-v1.3.1") is not None


STEPS = ["stop_task", "back_up", "restore_files", "restore_registry", "sync_dependencies",
         "verify", "commit_and_tag", "start_task"]


@pytest.mark.parametrize("step_name", STEPS)
def test_failure_after_any_step_puts_everything_back(story, monkeypatch: pytest.MonkeyPatch,
                                                     step_name: str) -> None:
    ws, _ = story
    before = world(ws)
    with monkeypatch.context() as patched:
        patched.setattr(fr, step_name, failing_after(getattr(fr, step_name), step_name))
        with pytest.raises(OperationFailed) as err:
            fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert "everything was put back" in err.value.message and err.value.exit_code == 1
    assert world(ws) == before
    assert runs_again(ws, "1.3.0")
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["result"] == "failed" and entry["details"]["not_undone"] == []
    if step_name not in ("stop_task",):
        assert git(ws, "for-each-ref", "refs/clawback/backups/T01")  # the backup is kept


def test_missing_env_var_refused_before_anything_changes(story, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = story
    before = world(ws)
    monkeypatch.delenv("TUSHARE_TOKEN")
    with pytest.raises(OperationFailed, match="TUSHARE_TOKEN") as err:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert err.value.exit_code == 1 and "test-value" not in str(err.value)
    assert world(ws) == before


def test_smoke_failure_undoes_the_rollback(story, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = story
    before = world(ws)
    from tasks_lib import verify_live as live_verify
    from tasks_lib.verify_live import Level

    monkeypatch.setattr(live_verify, "smoke_level",
                        lambda *a, **k: Level(3, "smoke", False, "exit 1: ImportError: boom"))
    import tasks_lib.rollback as tr

    monkeypatch.setattr(tr, "smoke_level", live_verify.smoke_level)
    with pytest.raises(VerificationFailed, match="level 3 smoke"):
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert world(ws) == before


@pytest.mark.parametrize(("task_id", "version", "error"), [
    ("T01", "9.9.9", NotFound), ("T99", "1.0.0", BadInput), ("../T01", "1.2.0", BadInput),
    ("T01", "1.2", BadInput), ("T01", "1.3.0", BadInput), ("T42", "1.2.0", NotFound),
])
def test_bad_input_changes_nothing(story, task_id: str, version: str, error: type) -> None:
    ws, _ = story
    before = world(ws)
    with pytest.raises(error):
        fr.run_rollback(str(ws.root), task_id, version)
    assert world(ws) == before


def test_wrong_from_version_and_concurrent_rollback_refused(story) -> None:
    ws, _ = story
    before = world(ws)
    with pytest.raises(Conflict, match="is at 1.3.0"):
        fr.run_rollback(str(ws.root), "T01", "1.2.0", from_version="1.2.5")
    with task_lock(ws.state_dir, "T01", "another rollback"):
        with pytest.raises(Conflict) as err:
            fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert err.value.exit_code == 3
    assert world(ws) == before


def test_a_task_that_was_not_running_stays_stopped(story) -> None:
    ws, _ = story
    process.stop(ws, ws.task("T01"))
    r = fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert not r.was_running and r.pid is None
    assert process.run_state(ws, ws.task("T01")).running is False


@pytest.mark.parametrize("operation", ["rollback", "snapshot"])
def test_another_tasks_uncommitted_registry_edit_stays_uncommitted(story, operation: str) -> None:
    """The commit takes HEAD's registry with only T01's entry changed: the operator's pending edit
    of T02's entry is neither committed with T01 nor lost from the working tree."""
    from flows.rollback import run_rollback
    from flows.snapshot import run_snapshot
    from tasks_lib.formats.registry import Registry

    ws, _ = story
    reg_path = ws.root / "task_registry.json"
    reg = Registry.load(reg_path)
    t02 = reg.entry("T02")
    t02["description"] = "pending edit, not committed"
    reg.set_entry("T02", t02)
    reg.save()
    head_t02 = Registry.from_text(git(ws, "show", "HEAD:task_registry.json"), reg_path).entry("T02")

    if operation == "rollback":
        run_rollback(str(ws.root), "T01", "1.2.0")
    else:
        (ws.root / "tasks/T01/extra.py").write_text("x = 1\n")
        run_snapshot(str(ws.root), "T01", bump="patch")
    committed = Registry.from_text(git(ws, "show", "HEAD:task_registry.json"), reg_path)
    work = Registry.load(reg_path)
    assert committed.entry("T02") == head_t02                        # not swept into T01's commit
    assert work.entry("T02")["description"] == "pending edit, not committed"   # not lost
    assert committed.entry("T01") == work.entry("T01")                # T01's change is committed
    assert git(ws, "diff", "--name-only").split() == ["task_registry.json"]   # still pending
    assert git(ws, "diff", "--cached", "--name-only").split() == []
