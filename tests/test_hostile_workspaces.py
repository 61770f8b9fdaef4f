"""Cases found by attacking the trust guarantees (a second pass, on workspaces the
first tests did not think of): each is a class of problem, fixed where it arises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.rollback as fr
from clawback.cli import main
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput, Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry
from tasks_lib.state.audit import AuditLog
from tests.conftest import failing_after, git
from tests.state.test_crash import ROLLBACK_CHILD, kill_child_at


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")


def plain(ws: Workspace, task_id: str = "T01", **settings: object) -> None:
    """The task on the PATH's python3 (no environment to build), with the given settings."""
    reg = Registry.load(ws.registry_path)
    entry = reg.entry(task_id)
    entry["clawback"] = {"python": "none", **settings}
    reg.set_entry(task_id, entry)
    reg.save()
    (ws.root / f"tasks/{task_id}/main.py").write_text("X = 1\n")
    (ws.root / f"tasks/{task_id}/requirements.txt").write_text("")


def cli(ws: Workspace, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main([*args, "--workspace", str(ws.root), "--json"])
    return code, json.loads(capsys.readouterr().out)


# -- a file a version tracks that .gitignore now ignores ------------------------------------
@pytest.fixture
def ignored_env(ws: Workspace) -> Workspace:
    """1.2.0 tracks tasks/T01/.env; 1.3.0 untracked it (the template ignores .env) and the
    operator's working copy holds newer content."""
    run_init(str(ws.root))
    plain(ws)
    env = ws.root / "tasks/T01/.env"
    env.write_text("MODE=paper\n")
    git(ws, "add", "-f", "--", "tasks/T01/.env")
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.2.0 with .env
    git(ws, "rm", "-q", "--cached", "--", "tasks/T01/.env")
    git(ws, "commit", "-qm", "stop tracking .env")
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.3.0 without it
    env.write_text("MODE=live\n")
    return ws


def test_an_ignored_file_the_target_tracks_is_backed_up_and_restored(ignored_env: Workspace) -> None:
    ws = ignored_env
    env = ws.root / "tasks/T01/.env"
    done = fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert env.read_text() == "MODE=paper\n"                              # the version's file
    assert git(ws, "show", f"{done.backup_ref}:tasks/T01/.env") == "MODE=live\n"   # kept


@pytest.mark.parametrize("step_name", ["restore_files", "verify", "commit_and_tag"])
def test_an_undo_puts_an_ignored_file_back(ignored_env: Workspace, monkeypatch, step_name) -> None:
    ws = ignored_env
    monkeypatch.setattr(fr, step_name, failing_after(getattr(fr, step_name), step_name))
    with pytest.raises(Exception, match="everything was put back"):
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert (ws.root / "tasks/T01/.env").read_text() == "MODE=live\n"


def test_a_task_in_an_ignored_directory_is_refused(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    (ws.root / "tasks/tmp/T05").mkdir(parents=True)                     # tmp/ is ignored
    (ws.root / "tasks/tmp/T05/config.yaml").write_text("version: 1.0.0\n")
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"].append({"id": "T05", "version": "1.0.0", "location": "tasks/tmp/T05",
                         "entry_point": "main.py", "clawback": {"python": "none"}})
    ws.registry_path.write_text(json.dumps(doc, indent=2) + "\n")
    code, out = cli(ws, capsys, "snapshot", "--task", "T05", "--version", "1.0.0")
    assert code == 2 and "would not be versioned" in out["error"]["message"]
    assert not ws.git.tag_info("T05-v1.0.0")


# -- state path spellings --------------------------------------------------------------------
def test_a_dot_slash_state_pattern_means_the_task_directory(ws: Workspace) -> None:
    run_init(str(ws.root))
    plain(ws, state_paths=["./cache/"])
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.2.0
    (ws.root / "tasks/T01/cache").mkdir()
    (ws.root / "tasks/T01/cache/model.bin").write_bytes(b"weights")
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.3.0
    assert "cache" not in git(ws, "ls-tree", "-r", "--name-only", "HEAD", "--", "tasks/T01")
    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert (ws.root / "tasks/T01/cache/model.bin").read_bytes() == b"weights"


def test_a_state_pattern_repeating_the_location_is_refused(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    plain(ws, "T02", state_paths=["tasks/T02/cache/"])
    code, out = cli(ws, capsys, "snapshot", "--task", "T02", "--bump", "patch")
    assert code == 2 and "repeats the task's location" in out["error"]["message"]
    code, out = cli(ws, capsys, "status")
    assert {r["id"]: r["status"] for r in out["result"]["tasks"]}["T01"] == "active"


# -- tool state that links into the workspace ----------------------------------------------
@pytest.mark.parametrize("entry", ["snapshots", "reports", "run"])
def test_tool_state_linked_into_a_task_is_refused(ws: Workspace, entry: str) -> None:
    run_init(str(ws.root))
    plain(ws)
    target = ws.state_dir / entry
    if target.exists():
        subprocess.run(["rm", "-rf", "--", str(target)], check=True)
    os.symlink(ws.root / "tasks/T02", target)
    before = sorted(p.name for p in (ws.root / "tasks/T02").iterdir())
    with pytest.raises(Conflict, match="link into the workspace"):
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert sorted(p.name for p in (ws.root / "tasks/T02").iterdir()) == before


# -- secrets in git and in spellings the raw value does not match ------------------------------
def test_a_reason_holding_a_secret_value_lands_masked_in_git(ws: Workspace,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    value = "tok-8700abcdef123456"
    monkeypatch.setenv("TUSHARE_TOKEN", value)
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor", message=f"uses {value} now")
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    done = fr.run_rollback(str(ws.root), "T01", "1.2.0", reason=f"because {value} leaked")
    texts = [git(ws, "log", "--format=%B", "-3"), git(ws, "cat-file", "tag", done.tag),
             git(ws, "cat-file", "tag", "T01-v1.2.0"), git(ws, "show", "HEAD:task_registry.json"),
             ws.registry_path.read_text()]
    assert all(value not in t for t in texts)
    assert "because *** leaked" in texts[0]


@pytest.mark.parametrize(("name", "value"), [
    ("PGPASSWORD", "pg-secret-1"), ("MYTOKEN", "mytok-123"), ("GITHUB_PAT", "pat-abcdef12"),
    ("BROKER_PIN", "pin-99887"), ("SOME_SETTING", "ghp_abcdefghijklmnop12345678"),
])
def test_secret_looking_variables_are_masked_in_every_spelling(name: str, value: str) -> None:
    from tasks_lib.secrets import masking

    env = {name: value + '\\q"'}
    raw = value + '\\q"'
    text = f"{raw} {json.dumps(raw)} {raw!r}"
    assert value not in masking.mask(text, env)


# -- an undo that could not complete stops the task's operations ---------------------------
def test_a_kept_failed_journal_refuses_further_operations(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    plain(ws)
    (ws.state_dir / "journal").mkdir(exist_ok=True)
    (ws.state_dir / "journal/T01-rollback.failed.json").write_text('{"name": "T01-rollback"}')
    head = git(ws, "rev-parse", "HEAD")
    code, out = cli(ws, capsys, "snapshot", "--task", "T01", "--bump", "patch")
    assert code == 3 and "could not complete" in out["error"]["message"]
    assert git(ws, "rev-parse", "HEAD") == head
    code, out = cli(ws, capsys, "snapshot", "--task", "T02", "--bump", "patch")  # others go on
    assert code == 0


def test_another_tasks_commit_never_strands_a_killed_operation(ws: Workspace, tmp_path) -> None:
    """T01's rollback is killed after its commit; before anyone looks, T02 is snapshotted. The
    T02 snapshot first undoes T01's interrupted rollback (its writer is gone), then commits."""
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.2.0
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.3.0
    registry_before = ws.registry_path.read_bytes()
    kill_child_at(ROLLBACK_CHILD, "commit_and_tag", ws, tmp_path)
    (ws.root / "tasks/T02/extra.py").write_text("E = 2\n")
    run_snapshot(str(ws.root), "T02", bump="patch")
    assert ws.task("T01").version == "1.3.0" and (ws.root / "tasks/T01/extra.py").exists()
    t01 = Registry.from_text(ws.registry_path.read_text(), ws.registry_path).entry("T01")
    assert t01 == Registry.from_text(registry_before.decode(), ws.registry_path).entry("T01")
    entries = [e for e in AuditLog(ws.state_dir).entries("T01")]
    assert entries[-1]["action"] == "recover-interrupted" and entries[-1]["result"] == "ok"
    assert entries[-1]["details"]["found_by"] == "T02"


def test_status_names_the_backup_of_newer_work(ws: Workspace, tmp_path, capsys) -> None:
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    kill_child_at(ROLLBACK_CHILD, "restore_files", ws, tmp_path)
    (ws.root / "tasks/T01/main.py").write_text("X = 2  # edited after the crash\n")
    code = main(["status", "--workspace", str(ws.root)])
    out = capsys.readouterr().out
    assert code == 0 and "newer work kept first in refs/clawback/backups/T01/" in out


# -- one task's odd entry never takes the others down ----------------------------------------
@pytest.mark.parametrize("bad", [
    {"version": 2.01}, {"status": 1}, {"snapshots": "none"}, {"location": ["tasks/T02"]},
    {"clawback": {"state_paths": ["[z-a]"]}},
    {"clawback": {"health": {"error_pattern": "(a+)+$"}}},
])
def test_an_odd_field_is_that_tasks_problem(ws: Workspace, capsys, bad: dict) -> None:
    run_init(str(ws.root))
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"][1].update(bad)
    ws.registry_path.write_text(json.dumps(doc, indent=2) + "\n")
    code, out = cli(ws, capsys, "status")
    rows = {r["id"]: r for r in out["result"]["tasks"]}
    assert code == 1 and rows["T02"]["status"] == "error" and rows["T01"]["tagged"]
    code, out = cli(ws, capsys, "history", "--task", "T01")
    assert code == 0
    code, out = cli(ws, capsys, "recover", "--task", "T02", "--target-version", "2.0.1")
    assert code == 2 and "internal error" not in out["error"]["message"]


def test_a_fifo_config_never_hangs_the_others(ws: Workspace, tmp_path: Path) -> None:
    run_init(str(ws.root))
    cfg = ws.root / "tasks/T02/config.yaml"
    cfg.unlink()
    os.mkfifo(cfg)
    for argv in (["status"], ["history", "--task", "T01"], ["health", "--task", "T01"]):
        proc = subprocess.run([sys.executable, "-m", "clawback", *argv, "--workspace",
                               str(ws.root)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none"})
        assert "Traceback" not in proc.stderr, argv


def test_a_deeply_nested_registry_is_bad_input_without_a_traceback(ws: Workspace, capsys) -> None:
    ws.registry_path.write_text('{"tasks": [{"id": "T01", "x": ' + "[" * 5000 + "]" * 5000 + "}]}")
    code = main(["status", "--workspace", str(ws.root)])
    err = capsys.readouterr().err
    assert code == 2 and "nested too deeply" in err and "Traceback" not in err


@pytest.mark.parametrize("limit", [None, 20_000])
def test_nesting_is_judged_by_depth_not_by_the_interpreters_recursion_limit(
        ws: Workspace, capsys, limit: int | None) -> None:
    """An interpreter with a raised recursion limit (a library may raise it) decodes 5,000 levels;
    the copies made later would then fail as an internal error. The depth is refused first."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit or before)
    try:
        for depth in (5000, 70):
            ws.registry_path.write_text('{"tasks": [{"id": "T01", "x": ' + "[" * depth +
                                        "]" * depth + "}]}")
            code = main(["status", "--workspace", str(ws.root)])
            err = capsys.readouterr().err
            assert code == 2 and "nested too deeply" in err and "internal error" not in err
    finally:
        sys.setrecursionlimit(before)


def test_a_task_directory_that_is_a_repository_is_refused(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    subprocess.run(["git", "init", "-q", str(ws.root / "tasks/T02")], check=True)
    code, out = cli(ws, capsys, "snapshot", "--task", "T02", "--bump", "patch")
    assert code == 2 and "nested git repository" in out["error"]["message"]


@pytest.mark.parametrize("argv", [["health", "--min-interval", "-5"],
                                  ["rollback", "--task", "T01", "--to", "1.1.0", "--grace", "nan"],
                                  ["stop", "--task", "T01", "--timeout", "-1"]])
def test_bad_numbers_are_bad_input(ws: Workspace, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--workspace", str(ws.root)])
    assert exit_.value.code == 2


def test_bad_pattern_unit() -> None:
    from tasks_lib.core import settings

    with pytest.raises(BadInput, match="repeats a group"):
        settings.parse("T01", {"health": {"error_pattern": "(ERROR.*)+"}})
    settings.parse("T01", {"health": {"error_pattern": "ERROR|Traceback"}})


def test_a_secret_written_between_the_scan_and_the_commit_is_refused(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent writes a credential while the environment syncs (after the scan): the commit's
    own content is scanned once more, so the snapshot is refused and undone."""
    import flows.snapshot as fs
    from tasks_lib.core.errors import SecretsFound

    run_init(str(ws.root))
    plain(ws)
    real = fs.sync_environment
    leak = "TUSHARE_TOKEN = '" + "8700" + "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2'\n"

    def agent_writes_meanwhile(*args: object, **kw: object) -> object:
        done = real(*args, **kw)
        (ws.root / "tasks/T01/fetch.py").write_text(leak)
        return done

    head = git(ws, "rev-parse", "HEAD")
    monkeypatch.setattr(fs, "sync_environment", agent_writes_meanwhile)
    with pytest.raises(SecretsFound, match="fetch.py") as err:
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert "everything was put back" in err.value.message and "8700a1" not in str(err.value)
    assert git(ws, "rev-parse", "HEAD") == head and not ws.git.tag_info("T01-v1.2.0")
    assert "fetch.py" not in git(ws, "ls-files", "--", "tasks/T01")


# == a second pass of attacks ===============================================================
def test_an_undo_never_writes_through_a_link_planted_at_a_temp_name(ws: Workspace,
                                                                   tmp_path: Path) -> None:
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    kill_child_at(ROLLBACK_CHILD, "restore_registry", ws, tmp_path)
    t02_main = (ws.root / "tasks/T02/main.py").read_bytes()
    for name in (".task_registry.json.clawback-undo", ".task_registry.json.clawback-tmp"):
        os.symlink("tasks/T02/main.py", ws.root / name)
    main(["status", "--workspace", str(ws.root)])
    assert (ws.root / "tasks/T02/main.py").read_bytes() == t02_main
    assert not ws.registry_path.is_symlink() and ws.task("T01").version == "1.3.0"


def test_a_forged_journal_cannot_write_outside(ws: Workspace, tmp_path: Path) -> None:
    import base64

    run_init(str(ws.root))
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    forged = {"name": "T02-snapshot", "pid": 1, "operation": {"action": "snapshot"},
              "actions": [{"kind": "restore_entry", "description": "x", "path": str(victim),
                           "task": "T02", "entry": None, "written": "0" * 64,
                           "content": base64.b64encode(b"owned\n").decode()},
                          {"kind": "restore_file", "description": "y", "task": "T02",
                           "path": "../../" + victim.name, "content": None, "written": "0"},
                          {"kind": "restore_tree", "description": "z", "task": "T02",
                           "location": "tasks/T01", "state_sets": [[]], "commit": "0" * 40}]}
    (ws.state_dir / "journal").mkdir(exist_ok=True)
    (ws.state_dir / "journal/T02-snapshot.json").write_text(json.dumps(forged))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")            # undoes other tasks' journals first
    assert victim.read_text() == "untouched\n"
    kept = json.loads((ws.state_dir / "journal/T02-snapshot.failed.json").read_text())
    assert kept["name"] == "T02-snapshot"
    audit = [e for e in AuditLog(ws.state_dir).entries("T02") if e["action"] == "recover-interrupted"]
    assert all("refused" in why for why in audit[-1]["details"]["not_undone"])


@pytest.mark.parametrize("entry", ["verified/T01-v1.1.0.json", "run/T01.out",
                                   "locks/task-T01.owner", "locks/task-T01.lock",
                                   "health/T01.jsonl"])
@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_tool_state_files_are_never_written_through_links(ws: Workspace, entry: str,
                                                          how: str) -> None:
    run_init(str(ws.root))
    plain(ws, run={"type": "process", "command": ["python3", "-c", "print('x')"]})
    victim = ws.root / "tasks/T02/main.py"
    before = victim.read_bytes()
    target = ws.state_dir / entry
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    (os.symlink if how == "symlink" else os.link)(victim, target)
    main(["verify-snapshot", "--task", "T01", "--version", "1.1.0", "--workspace", str(ws.root)])
    main(["health", "--task", "T01", "--workspace", str(ws.root)])
    main(["start", "--task", "T01", "--workspace", str(ws.root)])
    main(["stop", "--task", "T01", "--workspace", str(ws.root)])
    assert victim.read_bytes() == before


def test_a_bind_mount_inside_a_task_is_never_written_through(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.bin").write_bytes(b"outside data")
    shared = ws.root / "tasks/T01/shared"
    shared.mkdir()
    if subprocess.run(["mount", "--bind", str(outside), str(shared)],
                      capture_output=True).returncode != 0:
        pytest.skip("bind mounts need privileges this machine does not give")
    try:
        run_init(str(ws.root))
        with pytest.raises(BadInput, match="mount point"):
            run_snapshot(str(ws.root), "T01", bump="minor")
        assert (outside / "keep.bin").read_bytes() == b"outside data"
    finally:
        subprocess.run(["umount", str(shared)], check=False)


def test_a_dot_slash_health_source_is_state(ws: Workspace) -> None:
    run_init(str(ws.root))
    plain(ws, health={"source": "./status//runs.ndjson", "error_pattern": "ERROR"})
    (ws.root / "tasks/T01/status").mkdir()
    (ws.root / "tasks/T01/status/runs.ndjson").write_text("2026-12-01 10:00:00 ok\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    assert "status" not in git(ws, "ls-tree", "-r", "--name-only", "HEAD", "--", "tasks/T01")


def test_kept_state_rules_hold_while_head_has_them(ws: Workspace) -> None:
    """The operator trims rollback_history by hand (uncommitted): the rules it kept still hold,
    since HEAD's entry has them."""
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.2.0: no cache/
    plain(ws, state_paths=["cache/"])
    (ws.root / "tasks/T01/extra.py").write_text("E = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                    # 1.3.0: cache/ is state
    (ws.root / "tasks/T01/cache").mkdir()
    (ws.root / "tasks/T01/cache/model.bin").write_bytes(b"weights")
    fr.run_rollback(str(ws.root), "T01", "1.2.0")                      # keeps cache/ as state
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["rollback_history"] = []
    reg.set_entry("T01", entry)
    reg.save()
    from flows.recover import run_recover

    run_recover(str(ws.root), "T01", "1.2.0")
    assert (ws.root / "tasks/T01/cache/model.bin").read_bytes() == b"weights"


@pytest.mark.parametrize(("name", "text"), [
    ("deploy.yaml", "env:\n  - name: TUSHARE_TOKEN\n    value: {value}\n"),
    ("run.sh", "#!/bin/sh\npython main.py --token {value}\n"),
    ("fetch.py", 'TOKEN = os.getenv("TUSHARE_TOKEN") or "{value}"\n'),
    ("notes.txt", "remember {value}\n"),
])
def test_a_set_secrets_value_in_any_committed_file_is_refused(ws: Workspace, monkeypatch,
                                                              name: str, text: str) -> None:
    from tasks_lib.core.errors import SecretsFound

    value = "tk8700a1b2c3d4e5f6a7b8c9"
    monkeypatch.setenv("TUSHARE_TOKEN", value)
    run_init(str(ws.root))
    plain(ws)
    (ws.root / "tasks/T01" / name).write_text(text.format(value=value))
    with pytest.raises(SecretsFound, match=name) as err:
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert value not in str(err.value) and not ws.git.tag_info("T01-v1.2.0")


def test_a_secrets_value_in_the_registry_entry_is_refused(ws: Workspace, monkeypatch) -> None:
    from tasks_lib.core.errors import SecretsFound

    value = "tk8700a1b2c3d4e5f6a7b8c9"
    monkeypatch.setenv("TUSHARE_TOKEN", value)
    run_init(str(ws.root))
    plain(ws, smoke=f"python3 main.py --token {value}")
    with pytest.raises(SecretsFound, match="holds the value of"):
        run_snapshot(str(ws.root), "T01", bump="minor")


def test_the_hook_is_not_bypassed(ws: Workspace, monkeypatch) -> None:
    from tasks_lib.secrets.hooks import staged_secrets

    value = "tk8700a1b2c3d4e5f6a7b8c9"
    monkeypatch.setenv("TUSHARE_TOKEN", value)
    run_init(str(ws.root))
    (ws.root / "tasks/T01/keys.yaml").write_text(f"token: {value}\n")
    git(ws, "add", "--", "tasks/T01/keys.yaml")
    assert "tasks/T01/keys.yaml" in staged_secrets(ws).findings
    ws.registry_path.write_text(ws.registry_path.read_text() + "{ broken")   # staged broken
    git(ws, "add", "--", "task_registry.json")
    assert "tasks/T01/keys.yaml" in staged_secrets(ws).findings
    git(ws, "checkout", "HEAD", "--", "task_registry.json")
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"][0]["version"] = 1.3                                   # T01's entry unusable
    ws.registry_path.write_text(json.dumps(doc, indent=2) + "\n")
    git(ws, "add", "--", "task_registry.json")
    assert "tasks/T01/keys.yaml" in staged_secrets(ws).findings


def test_a_tasks_command_never_finds_clawbacks_own_python(ws: Workspace, monkeypatch) -> None:
    from tasks_lib.runtime import process

    run_init(str(ws.root))
    plain(ws, run={"type": "process", "command": ["python", "-c",
                                                  "import sys, time; print(sys.prefix); "
                                                  "sys.stdout.flush(); time.sleep(5)"]})
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.prefix) / "bin"), os.environ["PATH"]]))
    task = ws.task("T01")
    process.start(ws, task)
    try:
        import time

        for _ in range(50):
            out = (ws.state_dir / "run/T01.out").read_text()
            if "\n/" in out:
                break
            time.sleep(0.1)
        assert sys.prefix not in out.split("\n", 1)[1]
    except FileNotFoundError:
        pytest.skip("no python on PATH besides clawback's")
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_an_alias_bomb_config_does_not_hang_the_snapshot(ws: Workspace) -> None:
    run_init(str(ws.root))
    plain(ws)
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text() + "\n".join(levels) + "\n")
    proc = subprocess.run([sys.executable, "-m", "clawback", "snapshot", "--task", "T01",
                           "--bump", "minor", "--workspace", str(ws.root)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none"})
    assert proc.returncode == 0, proc.stderr


def test_a_huge_error_message_is_judged_quickly(ws: Workspace) -> None:
    import time as clock
    from datetime import UTC, datetime

    from tasks_lib.health.checkup import check_tasks

    run_init(str(ws.root))
    runs = ws.root / "tasks/T01/logs/runs.jsonl"
    runs.parent.mkdir(exist_ok=True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs.write_text(json.dumps({"ts": now, "ok": False, "version": "1.1.0",
                                "error": "x" * 200_000 + "token=abc"}) + "\n")
    started = clock.monotonic()
    check_tasks(ws, "T01")
    assert clock.monotonic() - started < 30  # (minutes before: quadratic masking)


@pytest.mark.parametrize("argv", [["promote", "--task", "T01", "--version", "1.1.0",
                                   "--reason", "caf\udce9"]])
def test_text_clawback_cannot_store_is_bad_input(ws: Workspace, capsys, argv: list[str]) -> None:
    run_init(str(ws.root))
    code = main([*argv, "--workspace", str(ws.root)])
    assert code == 2 and "internal error" not in capsys.readouterr().err


def test_a_number_too_long_for_python_is_bad_input(ws: Workspace, capsys) -> None:
    doc = ws.registry_path.read_text().replace('"owner": "ops"', '"owner": ' + "9" * 5000)
    ws.registry_path.write_text(doc)
    code = main(["status", "--workspace", str(ws.root)])
    err = capsys.readouterr().err
    assert code == 2 and "too many digits" in err and "internal error" not in err


@pytest.mark.parametrize(("where", "text"), [
    ("run.sh", "#!/bin/sh\nexec python main.py --token 8700a1b2c3d4e5f6a7b8\n"),
    ("registry", "python3 main.py --api-key 8700a1b2c3d4e5f6a7b8"),
])
def test_a_flag_with_a_credential_is_found_without_knowing_the_value(
        ws: Workspace, where: str, text: str) -> None:
    from tasks_lib.core.errors import SecretsFound

    run_init(str(ws.root))
    if where == "registry":
        plain(ws, smoke=text)
    else:
        plain(ws)
        (ws.root / "tasks/T01" / where).write_text(text)
    with pytest.raises(SecretsFound) as err:
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert "8700a1b2" not in str(err.value)


# == a third pass: a journal is data someone could have written ============================
def _forge(ws: Workspace, task: str, *actions: dict) -> Path:
    path = ws.state_dir / f"journal/{task}-rollback.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"name": path.stem, "pid": 1, "operation": {"action": "rollback"},
                                "actions": list(actions)}))
    return path


def _commit_by_hand(ws: Workspace, task_id: str, message: str) -> str:
    """The operator edits ``task_id``'s entry and commits it; the new HEAD."""
    reg = Registry.load(ws.registry_path)
    entry = reg.entry(task_id)
    entry["owner"] = "alice"
    reg.set_entry(task_id, entry)
    reg.save()
    git(ws, "commit", "-qam", message)
    return git(ws, "rev-parse", "HEAD").strip()


def test_a_journal_puts_back_only_its_own_tasks_files(ws: Workspace) -> None:
    import base64

    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    t02 = (ws.root / "tasks/T02/main.py").read_bytes()
    owned = base64.b64encode(b"owned\n").decode()
    path = _forge(ws, "T01",
                  {"kind": "restore_file", "description": "a", "task": "T01",
                   "path": "tasks/T02/main.py", "content": owned, "written": None},
                  {"kind": "restore_file", "description": "b", "task": "T02",
                   "path": "tasks/T02/main.py", "content": owned, "written": None},
                  {"kind": "restore_file", "description": "c", "task": "T01",
                   "path": "tasks/T01/../T02/main.py", "content": owned, "written": None},
                  {"kind": "restore_tree", "description": "d", "task": "T01",
                   "location": "tasks/T02", "state_sets": [[]], "commit": "0" * 40})
    rec = recover(ws.root, ws.state_dir, path)
    assert (ws.root / "tasks/T02/main.py").read_bytes() == t02
    assert len(rec.failures) == 4 and all("refused" in f for f in rec.failures)


def test_a_journal_never_uncommits_or_untags_the_branchs_history(ws: Workspace) -> None:
    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                   # T01 v1.2.0, tagged
    plain(ws, "T02")
    run_snapshot(str(ws.root), "T02", bump="minor")                   # T02's commit on top
    head = git(ws, "rev-parse", "HEAD").strip()
    parent = git(ws, "rev-parse", "HEAD^").strip()
    tag_commit = git(ws, "rev-list", "-n1", "T01-v1.2.0").strip()
    path = _forge(ws, "T01",
                  {"kind": "uncommit", "description": "a", "task": "T01", "old": parent,
                   "new": head, "message": "x"},
                  {"kind": "delete_tag", "description": "b", "name": "T01-v1.2.0",
                   "commit": tag_commit})
    rec = recover(ws.root, ws.state_dir, path)
    assert git(ws, "rev-parse", "HEAD").strip() == head
    assert git(ws, "rev-list", "-n1", "T01-v1.2.0").strip() == tag_commit
    assert len(rec.failures) == 2 and all("refused" in f for f in rec.failures)


@pytest.mark.parametrize("entry", ["audit.jsonl", "health/T01.jsonl", "health/T01.hold.json",
                                   "verified/T01-v1.1.0.json", "locks/task-T01.owner",
                                   "notify-urls", "journal/T01-rollback.json"])
def test_a_fifo_in_tool_state_never_hangs_a_command(ws: Workspace, entry: str) -> None:
    run_init(str(ws.root))
    plain(ws, run={"type": "process", "command": ["python3", "-c", "print('x')"]})
    run_snapshot(str(ws.root), "T01", bump="minor")
    fifo = ws.state_dir / entry
    fifo.parent.mkdir(parents=True, exist_ok=True)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    for argv in (["status"], ["verify-snapshot", "--task", "T01", "--version", "1.1.0"],
                 ["health", "--task", "T01"], ["history", "--task", "T01"],
                 ["rollback", "--task", "T01", "--to", "1.1.0"]):
        done = subprocess.run([sys.executable, "-m", "clawback", *argv, "--workspace",
                               str(ws.root), "--json"], env=env, capture_output=True, text=True,
                              timeout=60)                                    # (a hang fails here)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        assert done.returncode in (0, 1, 3, 4), (argv, done.returncode, done.stderr)


@pytest.mark.parametrize("how", ["dir-link", "file-link"])
def test_a_pidfile_through_a_link_never_stops_another_tasks_process(ws: Workspace, capsys,
                                                                   how: str) -> None:
    run_init(str(ws.root))
    plain(ws, run={"type": "command", "start": ["python3", "-c", "pass"],
                   "pidfile": "run/t.pid"})
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (ws.root / "tasks/T02/run").mkdir()
        (ws.root / "tasks/T02/run/t.pid").write_text(f"{other.pid}\n")
        if how == "dir-link":
            os.symlink("../T02/run", ws.root / "tasks/T01/run")
        else:
            (ws.root / "tasks/T01/run").mkdir()
            os.symlink("../../T02/run/t.pid", ws.root / "tasks/T01/run/t.pid")
        code, out = cli(ws, capsys, "stop", "--task", "T01")
        assert code == 3 and "never reads, signals or removes" in out["error"]["message"], out
        assert other.poll() is None and (ws.root / "tasks/T02/run/t.pid").exists()
        code, out = cli(ws, capsys, "status", "--task", "T01")
        assert other.poll() is None and (ws.root / "tasks/T02/run/t.pid").exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("link", ["envs", "envs/T01", "envs/T01/digest"])
def test_environments_are_never_built_or_deleted_through_a_link(ws: Workspace, tmp_path: Path,
                                                                link: str) -> None:
    from tasks_lib.deps import envs as deps
    from tasks_lib.deps.lockfile import Lock

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "keep").mkdir(parents=True)
    (elsewhere / "keep/data.bin").write_bytes(b"precious")
    state = ws.ensure_state_dir()
    lk = Lock.empty()
    path = state / link.replace("digest", lk.digest_hex[:16])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        path.rmdir()
    os.symlink(elsewhere, path)
    try:
        deps.ensure_env(state, "T01", lk, sys.executable)
    except Conflict as exc:
        assert "symlink" in exc.message and link != "envs/T01/digest"
    else:
        assert link == "envs/T01/digest" and not path.is_symlink()   # the link was replaced
    assert (elsewhere / "keep/data.bin").read_bytes() == b"precious"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"]


@pytest.mark.parametrize("how", ["direct", "linked"])
def test_clawbacks_own_interpreter_is_never_a_tasks(ws: Workspace, capsys, tmp_path: Path,
                                                    how: str) -> None:
    own = Path(sys.prefix) / "bin/python"
    if how == "linked":
        os.symlink(own, tmp_path / "py")
        own = tmp_path / "py"
    run_init(str(ws.root))
    plain(ws)
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"]["python"] = str(own)
    reg.set_entry("T01", entry)
    reg.save()
    before = git(ws, "rev-parse", "HEAD")
    code, out = cli(ws, capsys, "snapshot", "--task", "T01", "--bump", "minor")
    assert code == 2 and "clawback's own interpreter" in out["error"]["message"]
    assert git(ws, "rev-parse", "HEAD") == before


@pytest.mark.parametrize("bad", [None, [], 5, {"id": 7}, {"version": "1.0.0"}, "T09"])
def test_an_entry_that_is_no_task_is_refused_alone(ws: Workspace, capsys, bad: object) -> None:
    run_init(str(ws.root))
    plain(ws)
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"].append(bad)
    ws.registry_path.write_text(json.dumps(doc, indent=2))
    git(ws, "commit", "-qam", "an odd entry")
    n = len(doc["tasks"]) - 1
    code, out = cli(ws, capsys, "status")
    rows = {r["id"]: r for r in out["result"]["tasks"]}
    assert code == 1 and rows[f"tasks[{n}]"]["status"] == "error" and rows["T01"]["tagged"]
    code, out = cli(ws, capsys, "snapshot", "--task", "T01", "--bump", "minor")
    assert code == 0 and ws.task("T01").version == "1.2.0", out
    assert json.loads(ws.registry_path.read_text())["tasks"][n] == bad     # kept as it was
    code, out = cli(ws, capsys, "rollback", "--task", "T01", "--to", "1.1.0")
    assert code == 0 and ws.task("T01").version == "1.1.0", out
    broken = [b.id for b in ws.scan().broken]
    assert broken == [f"tasks[{n}]"]


def test_a_mapping_entry_that_is_no_object_is_refused_alone(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"] = {e["id"]: e for e in doc["tasks"]} | {"T09": None}
    ws.registry_path.write_text(json.dumps(doc, indent=2))
    assert [b.id for b in ws.scan().broken] == ["T09"]
    assert ws.task("T01").version == "1.1.0"
    code, out = cli(ws, capsys, "snapshot", "--task", "T09")
    assert code == 2 and "not an object" in out["error"]["message"]


def test_a_credential_in_a_tasks_command_never_lands_in_its_log(ws: Workspace) -> None:
    from tasks_lib.runtime import process

    run_init(str(ws.root))
    secret = "8700f3c1d2e4b5a6978877665544"
    plain(ws, run={"type": "process", "command": [
        "python3", "-c", "import time; time.sleep(3)", "--token", secret,
        f"--api-key={secret}x", f"TUSHARE_TOKEN={secret}y"]})
    process.start(ws, ws.task("T01"))
    try:
        for path in (ws.state_dir / "run/T01.out", ws.state_dir / "run/T01.json"):
            assert secret not in path.read_text(), path
        assert "'--token', '****'" in (ws.state_dir / "run/T01.out").read_text()
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_a_bind_mount_above_a_task_is_refused(ws: Workspace) -> None:
    tasks = ws.root / "tasks"
    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")
    if subprocess.run(["mount", "--bind", str(tasks), str(tasks)],
                      capture_output=True).returncode != 0:
        pytest.skip("bind mounts need privileges this machine does not give")
    try:
        before = git(ws, "rev-parse", "HEAD")
        with pytest.raises(BadInput, match="tasks is a mount point, and tasks/T01 lies inside"):
            run_snapshot(str(ws.root), "T01", bump="minor")
        with pytest.raises(BadInput, match="mount point"):
            fr.run_rollback(str(ws.root), "T01", "1.1.0")
        assert git(ws, "rev-parse", "HEAD") == before
    finally:
        subprocess.run(["umount", str(tasks)], check=False)


# == a fourth pass: a journal acts on what it found before its first undo ===================
def test_a_journal_never_puts_back_runtime_state(ws: Workspace) -> None:
    import base64

    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    plain(ws, state_paths=["state/"])
    run_snapshot(str(ws.root), "T01", bump="minor")
    state = ws.root / "tasks/T01/state/positions.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text('{"600000.SH": 100}\n')
    path = _forge(ws, "T01",
                  {"kind": "restore_file", "description": "a", "task": "T01",
                   "path": "tasks/T01/state/positions.json", "content": None, "written": None},
                  {"kind": "restore_file", "description": "b", "task": "T01",
                   "path": "tasks/T01/state/positions.json",
                   "content": base64.b64encode(b"{}").decode(), "written": None},
                  {"kind": "restore_tree", "description": "c", "task": "T01",
                   "location": "tasks/T01/state", "state_sets": [[]],
                   "commit": git(ws, "rev-parse", "HEAD").strip()})
    rec = recover(ws.root, ws.state_dir, path)
    assert state.read_text() == '{"600000.SH": 100}\n'
    assert len(rec.failures) == 3 and all("refused" in f for f in rec.failures)


def test_a_journal_cannot_move_its_task_before_writing(ws: Workspace) -> None:
    import base64
    import hashlib

    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    (ws.root / "shared").mkdir()
    (ws.root / "shared/util.py").write_text("SHARED = 1\n")
    git(ws, "add", "shared")
    git(ws, "commit", "-qm", "shared code")
    current = ws.registry_path.read_bytes()
    doc = json.loads(current)
    for entry in doc["tasks"]:
        if entry["id"] == "T01":
            entry["location"] = "shared"
    moved = json.dumps(doc, indent=2).encode()
    path = _forge(ws, "T01",
                  {"kind": "restore_file", "description": "a", "task": "T01",
                   "path": "shared/util.py", "content": base64.b64encode(b"owned\n").decode(),
                   "written": None},
                  {"kind": "restore_entry", "description": "b", "task": "T01",
                   "path": "task_registry.json", "entry": None,
                   "content": base64.b64encode(moved).decode(),
                   "written": hashlib.sha256(current).hexdigest(), "entry_written": None})
    rec = recover(ws.root, ws.state_dir, path)
    assert (ws.root / "shared/util.py").read_text() == "SHARED = 1\n"
    assert ws.registry_path.read_bytes() == current
    assert len(rec.failures) == 2


def test_a_journal_never_undoes_a_finished_operation_or_anothers_commit(ws: Workspace) -> None:
    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")                   # finished: audited ok
    head = git(ws, "rev-parse", "HEAD").strip()
    parent = git(ws, "rev-parse", "HEAD^").strip()
    path = _forge(ws, "T01",
                  {"kind": "uncommit", "description": "a", "task": "T01", "old": parent,
                   "new": head, "message": "x"},
                  {"kind": "delete_tag", "description": "b", "name": "T01-v1.2.0", "commit": head})
    rec = recover(ws.root, ws.state_dir, path)
    assert git(ws, "rev-parse", "HEAD").strip() == head
    assert git(ws, "rev-parse", "-q", "--verify", "refs/tags/T01-v1.2.0").strip()
    assert len(rec.failures) == 2 and all("finished operation" in f for f in rec.failures)
    # the operator's own commit of another task's entry, named by T01's journal
    theirs = _commit_by_hand(ws, "T02", "T02: hand over to alice")
    path = _forge(ws, "T01", {"kind": "uncommit", "description": "c", "task": "T01",
                              "old": head, "new": theirs, "message": "x"})
    rec = recover(ws.root, ws.state_dir, path)
    assert git(ws, "rev-parse", "HEAD").strip() == theirs and len(rec.failures) == 1


def test_a_journal_left_after_the_ok_entry_is_dropped_not_undone(ws: Workspace) -> None:
    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    plain(ws)
    run_snapshot(str(ws.root), "T01", bump="minor")
    head = git(ws, "rev-parse", "HEAD").strip()
    path = ws.state_dir / "journal/T01-snapshot.json"             # killed after the ok entry
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"name": "T01-snapshot", "pid": 1, "operation": {
        "action": "snapshot", "task": "T01", "tag": "T01-v1.2.0"}, "actions": [
        {"kind": "delete_tag", "description": "b", "name": "T01-v1.2.0", "commit": head}]}))
    rec = recover(ws.root, ws.state_dir, path)
    assert not rec.failures and not path.exists() and "finished" in rec.undone[0]
    assert git(ws, "rev-parse", "-q", "--verify", "refs/tags/T01-v1.2.0").strip()


def test_a_copied_pidfile_never_stops_another_tasks_process(ws: Workspace, capsys) -> None:
    import shutil

    run_init(str(ws.root))
    for tid in ("T01", "T02"):
        plain(ws, tid, run={"type": "process", "command": ["python3", "-c",
                                                           "import time; time.sleep(30)"]})
    code, out = cli(ws, capsys, "start", "--task", "T02")
    assert code == 0, out
    other = json.loads((ws.state_dir / "run/T02.json").read_text())["pid"]
    try:
        shutil.copy(ws.state_dir / "run/T02.json", ws.state_dir / "run/T01.json")
        code, out = cli(ws, capsys, "stop", "--task", "T01")
        assert code == 3 and "runs in tasks/T02 (task T02)" in out["error"]["message"]
        os.kill(other, 0)                                                  # still alive
    finally:
        main(["stop", "--task", "T02", "--workspace", str(ws.root)])


def test_a_hard_linked_pidfile_is_never_used(ws: Workspace, capsys) -> None:
    run_init(str(ws.root))
    plain(ws, run={"type": "command", "start": ["python3", "-c", "pass"], "pidfile": "run/pid"})
    (ws.root / "tasks/T02/run").mkdir()
    (ws.root / "tasks/T02/run/pid").write_text("12345\n")
    (ws.root / "tasks/T01/run").mkdir()
    os.link(ws.root / "tasks/T02/run/pid", ws.root / "tasks/T01/run/pid")
    code, out = cli(ws, capsys, "stop", "--task", "T01")
    assert code == 3 and "hard link" in out["error"]["message"]
    assert (ws.root / "tasks/T02/run/pid").exists()


def test_a_wrapper_that_runs_clawbacks_interpreter_is_refused(ws: Workspace, capsys,
                                                            tmp_path: Path) -> None:
    wrapper = tmp_path / "py"
    wrapper.write_text(f'#!/bin/sh\nexec "{Path(sys.prefix) / "bin/python"}" "$@"\n')
    wrapper.chmod(0o755)
    run_init(str(ws.root))
    plain(ws)
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"]["python"] = str(wrapper)
    reg.set_entry("T01", entry)
    reg.save()
    code, out = cli(ws, capsys, "snapshot", "--task", "T01", "--bump", "minor",
                    "--allow-shared-install")
    assert code == 2 and "runs clawback's own interpreter" in out["error"]["message"]


# == a fifth pass ===========================================================================
def test_a_journal_without_task_fields_is_still_its_tasks(ws: Workspace) -> None:
    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    head = _commit_by_hand(ws, "T02", "T02 tune risk limit")
    path = _forge(ws, "T01",
                  {"kind": "uncommit", "description": "a", "old": git(ws, "rev-parse", "HEAD^")
                   .strip(), "new": None, "message": "T02 tune risk limit"},
                  {"kind": "restore_index", "description": "b", "task": "T01",
                   "saved": str(ws.state_dir / "tmp/index")},
                  {"kind": "start_task", "description": "c", "task": "T01"},
                  {"kind": "delete_tag", "description": "d", "name": "T01-v1.1.0",
                   "commit": git(ws, "rev-list", "-n1", "T01-v1.1.0").strip()})
    rec = recover(ws.root, ws.state_dir, path)
    assert git(ws, "rev-parse", "HEAD").strip() == head
    assert git(ws, "rev-parse", "-q", "--verify", "refs/tags/T01-v1.1.0").strip()
    assert len(rec.failures) == 4 and all("refused" in f for f in rec.failures), rec.failures


@pytest.mark.parametrize("spelling", ["tasks/T01///state/p.json", "tasks/T01/.//state/p.json",
                                      "tasks/T01/x/../state/p.json"])
def test_a_state_path_in_any_spelling_is_never_put_back(ws: Workspace, spelling: str) -> None:
    import base64

    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    plain(ws, state_paths=["state/"])
    state = ws.root / "tasks/T01/state/p.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text("kept\n")
    path = _forge(ws, "T01", {"kind": "restore_file", "description": "a", "task": "T01",
                              "path": spelling, "content": base64.b64encode(b"x").decode(),
                              "written": None})
    rec = recover(ws.root, ws.state_dir, path)
    assert state.read_text() == "kept\n" and len(rec.failures) == 1


def test_other_entries_must_be_byte_for_byte_the_same(ws: Workspace) -> None:
    import base64
    import hashlib

    from tasks_lib.state.recovery import recover

    run_init(str(ws.root))
    current = ws.registry_path.read_bytes()
    odd = current.replace(b'"id": "T02",', b'"id": "T02", "zz": "a", "zz": "b",', 1)
    assert odd != current
    path = _forge(ws, "T01", {"kind": "restore_entry", "description": "a", "task": "T01",
                              "path": "task_registry.json", "entry": ws.task("T01").entry,
                              "content": base64.b64encode(odd).decode(),
                              "written": hashlib.sha256(current).hexdigest(),
                              "entry_written": None})
    recover(ws.root, ws.state_dir, path)
    assert b'"zz"' not in ws.registry_path.read_bytes()
    assert ws.task("T02").version == "2.0.1"


def test_a_tag_name_made_again_is_undone_after_a_kill(ws: Workspace, tmp_path: Path) -> None:
    from tests.state.test_crash import CHILD

    run_init(str(ws.root))
    (ws.root / "tasks/T01/a.py").write_text("A = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                         # 1.2.0, audited
    git(ws, "tag", "-d", "T01-v1.2.0")
    git(ws, "reset", "-q", "--hard", "HEAD^")                              # gone by hand
    head = git(ws, "rev-parse", "HEAD").strip()
    kill_child_at(CHILD, "tag_snapshot", ws, tmp_path)                     # 1.2.0 again, killed
    main(["status", "--workspace", str(ws.root)])
    assert git(ws, "rev-parse", "HEAD").strip() == head
    assert not git(ws, "tag", "-l", "T01-v1.2.0").strip()
    assert not list((ws.state_dir / "journal").glob("*.json"))


@pytest.mark.parametrize("operation", ['"x"', "[1]", "null"])
def test_a_malformed_journal_is_kept_and_reported(ws: Workspace, capsys, operation: str) -> None:
    run_init(str(ws.root))
    (ws.state_dir / "journal").mkdir(exist_ok=True)
    (ws.state_dir / "journal/T02-rollback.json").write_text(
        f'{{"name": "T02-rollback", "operation": {operation}, "actions": []}}')
    code, out = cli(ws, capsys, "status")
    assert code in (0, 1) and "internal error" not in json.dumps(out)
    plain(ws)
    code, out = cli(ws, capsys, "snapshot", "--task", "T01", "--bump", "minor")
    assert code == 0, out


def test_stop_never_signals_another_tasks_process_in_the_group(ws: Workspace, capsys) -> None:
    import psutil

    run_init(str(ws.root))
    plain(ws, run={"type": "process", "command": ["python3", "-c", "import time; time.sleep(30)"]})
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(['sleep', '30'], "
         "cwd=sys.argv[1]); time.sleep(30)", str(ws.root / "tasks/T02")],
        cwd="/tmp", start_new_session=True)
    try:
        for _ in range(100):
            kids = psutil.Process(parent.pid).children()
            if kids:
                break
            time.sleep(0.05)
        (ws.state_dir / "run").mkdir(exist_ok=True)
        (ws.state_dir / "run/T01.json").write_text(json.dumps(
            {"pid": parent.pid, "create_time": psutil.Process(parent.pid).create_time()}))
        code, out = cli(ws, capsys, "stop", "--task", "T01")
        assert code == 3 and "runs in tasks/T02 (task T02)" in out["error"]["message"], out
        assert parent.poll() is None and all(k.is_running() for k in kids)
    finally:
        os.killpg(parent.pid, 9)
        parent.wait()
