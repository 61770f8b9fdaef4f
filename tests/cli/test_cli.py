"""The CLI contract: exit codes, --json, --workspace after the command, messages that
say what to do next, never a traceback; read-only commands never import Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.init import run_init
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.oplocks import task_lock
from tests.conftest import git


def clawback(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none", **(env or {})}
    return subprocess.run([sys.executable, "-m", "clawback", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    run_init(str(ws.root))
    return ws


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(("args", "code", "words"), [
    (["snapshot", "--task", "../x"], 2, "letters, digits"),
    (["snapshot", "--task", "--upload-pack=touch /tmp/x"], 2, ""),
    (["snapshot", "--task", "T42"], 2, "tasks in the registry: T01, T02, T99"),
    (["snapshot", "--task", "T99"], 2, "deleted"),
    (["snapshot", "--task", "T01", "--version", "1.2"], 2, "MAJOR.MINOR.PATCH"),
    (["snapshot", "--task", "T01", "--version", "1.1.0"], 3, "immutable"),
    (["verify-snapshot", "--task", "T01", "--version", "7.7.7"], 2, "known versions of T01: 1.1.0"),
    (["verify-snapshot", "--task", "T 01", "--version", "1.1.0"], 2, ""),
    (["history", "--task", "T42"], 2, "unknown task"),
    (["snapshot", "--task", "T01", "--bump", "huge"], 2, "invalid choice"),
])
def test_bad_input_exit_codes(adopted: Workspace, args: list[str], code: int, words: str) -> None:
    before = git(adopted, "log", "--all", "--oneline")
    proc = clawback(*args, "--workspace", str(adopted.root))
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    no_traceback(proc)
    assert git(adopted, "log", "--all", "--oneline") == before


def test_bad_workspaces(tmp_path: Path) -> None:
    proc = clawback("status", "--workspace", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not a directory" in proc.stderr
    proc = clawback("status", cwd=tmp_path)
    assert proc.returncode == 2 and "not inside a git repository" in proc.stderr
    (tmp_path / "r").mkdir()
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    (tmp_path / "r" / "task_registry.json").write_text('{"tasks": [ {"id": "T01",, } ]}')
    proc = clawback("status", "--json", cwd=tmp_path / "r")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["error"]["type"] == "MalformedFile" and "line 1" in doc["error"]["message"]
    no_traceback(proc)


def test_secret_refused_with_exit_3_and_never_printed(adopted: Workspace) -> None:
    cfg = adopted.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text() + "tushare_token: 8700aa11bb22\n")
    proc = clawback("snapshot", "--task", "T01", "--workspace", str(adopted.root), "--json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["error"]["paths"] == ["tushare_token"] and "--allow-secret" in doc["error"]["hint"]
    assert "8700aa11bb22" not in proc.stdout + proc.stderr
    assert adopted.git.tag_info("T01-v1.1.1") is None


def test_lock_held_exit_3(adopted: Workspace) -> None:
    with task_lock(adopted.state_dir, "T01", "rollback"):
        proc = clawback("snapshot", "--task", "T01", "--workspace", str(adopted.root))
    assert proc.returncode == 3 and "locked" in proc.stderr and "next:" in proc.stderr


def test_snapshot_and_read_only_commands_json(adopted: Workspace) -> None:
    root = str(adopted.root)
    proc = clawback("snapshot", "--task", "T01", "--bump", "minor", "-m", "x", "--workspace", root, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["result"]["tag"] == "T01-v1.2.0" and doc["result"]["files"] == 3
    status = json.loads(clawback("status", "--json", "--workspace", root).stdout)
    t01 = next(t for t in status["result"]["tasks"] if t["id"] == "T01")
    assert t01["version"] == "1.2.0" and t01["tagged"] and t01["stable"] == ["1.1.0"]
    hist = json.loads(clawback("history", "--task", "T01", "--json", "--workspace", root).stdout)
    assert [v["version"] for v in hist["result"]["versions"]] == ["1.1.0", "1.2.0"]
    ver = json.loads(clawback("verify-snapshot", "--task", "T01", "--version", "1.2.0", "--json",
                              "--workspace", root).stdout)
    assert ver["ok"] and all(c["ok"] for c in ver["result"]["checks"])
    # global flags before the command name work too
    assert clawback("--workspace", root, "status").returncode == 0


def test_status_shows_drift(adopted: Workspace) -> None:
    (adopted.root / "tasks/T01/main.py").write_text("print('edited')\n")
    (adopted.root / "tasks/T01/state/more.json").write_text("{}")  # state: not drift
    (adopted.root / "tasks/T01/logs").mkdir()
    (adopted.root / "tasks/T01/logs/runs.jsonl").write_text("{}\n")
    doc = json.loads(clawback("status", "--json", "--workspace", str(adopted.root)).stdout)
    t01 = next(t for t in doc["result"]["tasks"] if t["id"] == "T01")
    assert t01["drift"] == ["tasks/T01/main.py"]


@pytest.mark.parametrize("argv", [
    ["status"], ["history", "--task", "T01"], ["verify-snapshot", "--task", "T01", "--version", "1.1.0"],
])
def test_read_only_commands_do_not_import_prefect(adopted: Workspace, argv: list[str]) -> None:
    code = ("import sys; from clawback.cli import main; "
            f"rc = main({[*argv, '--workspace', str(adopted.root)]!r}); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_commands_without_the_orchestrator_do_not_import_prefect(adopted: Workspace) -> None:
    """CLAWBACK_ORCHESTRATOR=none (or an API that is down) must not pay ~2 s for Prefect."""
    root = str(adopted.root)
    code = ("import sys; from clawback.cli import main; "
            f"assert main(['snapshot', '--task', 'T01', '--workspace', {root!r}]) == 0; "
            f"assert main(['rollback', '--task', 'T01', '--to', '1.1.0', '--workspace', {root!r}]) == 0; "
            "assert 'prefect' not in sys.modules, 'prefect imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none", "TUSHARE_TOKEN": "x"})
    assert proc.returncode == 0, proc.stderr
    assert adopted.task("T01").version == "1.1.0"


def test_help_lists_exit_codes() -> None:
    proc = clawback("snapshot", "--help")
    assert proc.returncode == 0 and "3  refused because of a conflict" in proc.stdout


def test_verify_snapshot_exit_1_names_the_mismatch(adopted: Workspace) -> None:
    message = adopted.git.tag_message("T01-v1.1.0")
    git(adopted, "tag", "-d", "T01-v1.1.0")
    git(adopted, "commit", "-q", "--allow-empty", "-m", "later")
    adopted.git.create_tag("T01-v1.1.0", "HEAD", message)
    proc = clawback("verify-snapshot", "--task", "T01", "--version", "1.1.0",
                    "--workspace", str(adopted.root))
    assert proc.returncode == 1
    assert "FAIL    tag points at recorded commit" in proc.stdout
    no_traceback(proc)


@pytest.mark.parametrize("location", ["../outside", "/etc", "tasks/../../x", "-rf"])
def test_hostile_registry_location_is_bad_input(adopted: Workspace, location: str) -> None:
    reg = adopted.root / "task_registry.json"
    doc = json.loads(reg.read_text())
    doc["tasks"][0]["location"] = location
    reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    proc = clawback("snapshot", "--task", "T01", "--workspace", str(adopted.root))
    assert proc.returncode == 2 and "location" in proc.stderr
    no_traceback(proc)


def test_rollback_dry_run_changes_nothing_and_rollback_json(story) -> None:
    ws, old_pid = story
    root = str(ws.root)
    before = git(ws, "status", "--porcelain"), git(ws, "rev-parse", "HEAD")
    proc = clawback("rollback", "--task", "T01", "--to", "1.2.0", "--dry-run", "--json", "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)["result"]
    assert plan["packages_removed"] == ["clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0"]
    assert "tasks/T01/added_in_13.py" in plan["files"]["removed"]
    assert (git(ws, "status", "--porcelain"), git(ws, "rev-parse", "HEAD")) == before
    proc = clawback("rollback", "--task", "T01", "--to", "1.2.0", "--reason", "breach", "--json",
                    "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    assert doc["tag"] == "T01-v1.2.0-rollback-from-v1.3.0" and doc["pid"] != old_pid
    proc = clawback("verify-rollback", "--task", "T01", "--expected", "1.2.0", "--workspace", root)
    assert proc.returncode == 0 and "production readiness" in proc.stdout
    proc = clawback("verify-rollback", "--task", "T01", "--expected", "1.3.0", "--workspace", root)
    assert proc.returncode == 1 and "FAIL" in proc.stdout
    no_traceback(proc)


@pytest.mark.parametrize(("args", "code"), [
    (["--to", "9.9.9"], 2), (["--to", "1.3.0"], 2), (["--to", "v1.2"], 2),
    (["--to", "1.2.0", "--from", "1.0.0"], 3),
])
def test_rollback_refusals(story, args: list[str], code: int) -> None:
    ws, _ = story
    head = git(ws, "rev-parse", "HEAD")
    proc = clawback("rollback", "--task", "T01", *args, "--workspace", str(ws.root))
    assert proc.returncode == code and "next:" in proc.stderr
    no_traceback(proc)
    assert git(ws, "rev-parse", "HEAD") == head


def test_start_and_stop_commands(adopted: Workspace) -> None:
    from tasks_lib.runtime import process

    root = str(adopted.root)
    try:
        proc = clawback("start", "--task", "T02", "--workspace", root)
        assert proc.returncode == 0, proc.stderr
        assert clawback("start", "--task", "T02", "--workspace", root).returncode == 3
        proc = clawback("stop", "--task", "T02", "--workspace", root)
        assert proc.returncode == 0 and "stopped T02" in proc.stdout
        assert "was not running" in clawback("stop", "--task", "T02", "--workspace", root).stdout
    finally:
        process.stop(adopted, adopted.task("T02"), timeout=2)  # never leave it running


def test_recover_reports_four_live_levels(story) -> None:
    ws, old_pid = story
    proc = clawback("recover", "--task", "T01", "--target-version", "1.2.0", "--json",
                    "--workspace", str(ws.root))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    assert [lv["level"] for lv in doc["levels"]] == [1, 2, 3, 4] and all(lv["ok"] for lv in doc["levels"])
    assert doc["rollback"]["pid"] != old_pid
    report = Path(doc["report"]).read_text()
    assert "Live verification after the restart" in report and "time to recovery" in report


def test_rollback_without_a_reachable_prefect_api(story) -> None:
    ws, _ = story
    proc = clawback("rollback", "--task", "T01", "--to", "1.2.0", "--workspace", str(ws.root),
                    env={"PREFECT_API_URL": "http://127.0.0.1:9/api", "CLAWBACK_ORCHESTRATOR": "prefect"})
    assert proc.returncode == 0, proc.stderr
    assert "unreachable" in proc.stderr and "without the orchestrator" in proc.stderr
    from tasks_lib.state.audit import AuditLog

    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["action"] == "rollback" and entry["details"]["orchestrator"] == "none"


def test_recover_to_the_current_version_repairs_it_in_place(story) -> None:
    """Damaged files, a stray file and a missing package under the running 1.3.0: `rollback` to
    the same version is refused (pointing at recover); `recover` restores all of it exactly,
    restarts the task, keeps state and the damage (in the backup), and quarantines nothing."""
    from tasks_lib.deps import envs as deps
    from tasks_lib.formats.registry import Registry
    from tests.conftest import py, runs_again

    ws, old_pid = story
    root, t01 = str(ws.root), ws.root / "tasks/T01"
    good = {p.name: p.read_bytes() for p in t01.iterdir() if p.is_file()}
    packages = deps.installed(py(ws))
    state = (t01 / "state/positions.json").read_bytes()
    (t01 / "main.py").write_text("raise SystemExit('damaged')\n")
    (t01 / "stray.py").write_text("x = 1\n")
    subprocess.run([deps.uv_bin(), "pip", "uninstall", "-q", "--python", str(py(ws)), "clawdemo-risk"],
                   check=True)
    assert deps.installed(py(ws)) != packages

    refused = clawback("rollback", "--task", "T01", "--to", "1.3.0", "--workspace", root)
    assert refused.returncode == 2 and "recover --task T01 --target-version 1.3.0" in refused.stderr
    proc = clawback("recover", "--task", "T01", "--target-version", "1.3.0", "--json", "--workspace", root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    assert all(lv["ok"] for lv in doc["levels"]) and len(doc["levels"]) == 4
    assert {p.name: p.read_bytes() for p in t01.iterdir() if p.is_file()} == good
    assert (t01 / "state/positions.json").read_bytes() == state
    assert deps.installed(py(ws)) == packages
    assert doc["rollback"]["pid"] != old_pid and runs_again(ws, "1.3.0")
    assert "damaged" in git(ws, "show", f"{doc['rollback']['backup_ref']}:tasks/T01/main.py")
    entry = Registry.load(ws.registry_path).entry("T01")
    assert entry["version"] == "1.3.0"
    assert not any(s.get("quarantined") for s in entry["snapshots"] if s["version"] == "1.3.0")
    last = entry["rollback_history"][-1]
    assert (last["from_version"], last["to_version"]) == ("1.3.0", "1.3.0")
    assert "repaired from its snapshot" in git(ws, "log", "-1", "--format=%s")
