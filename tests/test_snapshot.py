"""snapshot on real git workspaces and real virtual environments (no orchestrator: the plain
path of the same composition; the Prefect path is in test_flows.py)."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from pathlib import Path

import pytest

import flows.snapshot as fs
from flows.init import run_init
from tasks_lib.core.errors import BadInput, Conflict, NotFound, OperationFailed, SecretsFound
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.formats.manifest import parse_tag_message
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.oplocks import task_lock
from tasks_lib.verify_snapshot import verify_snapshot
from tests.conftest import failing_after, git


def snap(ws: Workspace, **kw: object) -> fs.s.SnapshotResult:
    return fs.run_snapshot(str(ws.root), **kw)  # type: ignore[arg-type]


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    result = run_init(str(ws.root))
    assert not result.failures and {r.tag for r in result.adopted} == {"T01-v1.1.0", "T02-v2.0.1"}
    return ws


def state_of(ws: Workspace) -> dict[str, object]:
    """Everything a failed snapshot must leave exactly as it was."""
    root = ws.root
    env_current = ws.state_dir / "envs" / "T01" / "current"
    return {
        "head": git(ws, "rev-parse", "HEAD"),
        "tags": git(ws, "tag", "-l"),
        "index": git(ws, "diff", "--cached", "--binary"),
        "status": git(ws, "status", "--porcelain", "--untracked-files=all"),
        "registry": (root / "task_registry.json").read_bytes(),
        "config": (root / "tasks/T01/config.yaml").read_bytes(),
        "t02": (root / "tasks/T02/config.yaml").read_bytes(),
        "state": (root / "tasks/T01/state/positions.json").read_bytes(),
        "env": os.readlink(env_current) if env_current.is_symlink() else None,
    }


def test_happy_path(adopted: Workspace) -> None:
    ws = adopted
    root = ws.root
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 1\n")
    reg_before = (root / "task_registry.json").read_text()
    cfg_before = (root / "tasks/T01/config.yaml").read_text()
    r = snap(ws, task_id="T01", bump="minor", message="新增竞价成交量指标")
    assert (r.version, r.from_version, r.tag) == ("1.2.0", "1.1.0", "T01-v1.2.0")
    # one commit, only the task's paths and the registry
    assert git(ws, "log", "-1", "--format=%s") == "T01 v1.2.0: 新增竞价成交量指标\n"
    changed = sorted(git(ws, "diff", "--name-only", "HEAD~1", "HEAD").split())
    assert changed == ["task_registry.json", "tasks/T01/config.yaml", "tasks/T01/signals.py"]
    # config: exactly the version line changed
    cfg_after = (root / "tasks/T01/config.yaml").read_text()
    diff = [d for d in difflib.ndiff(cfg_before.splitlines(), cfg_after.splitlines()) if d[:1] in "+-"]
    assert diff == ["- version: 1.1.0   # managed by clawback", "+ version: 1.2.0   # managed by clawback"]
    # registry: T01 bumped with a snapshots[] record; T02 and T99 byte-identical
    reg_after = (root / "task_registry.json").read_text()
    t01 = next(t for t in json.loads(reg_after)["tasks"] if t["id"] == "T01")
    assert t01["version"] == "1.2.0" and t01["snapshots"][-1]["git_tag"] == "T01-v1.2.0"
    removed = [d for d in difflib.ndiff(reg_before.splitlines(), reg_after.splitlines()) if d[:1] == "-"]
    assert removed == ['-       "version": "1.1.0",'] or all("T02" not in d and "T99" not in d for d in removed)
    t02_before = next(t for t in json.loads(reg_before)["tasks"] if t["id"] == "T02")
    assert next(t for t in json.loads(reg_after)["tasks"] if t["id"] == "T02") == t02_before
    assert "涨停策略" in reg_after  # Chinese stays unescaped
    # runtime state: not committed, not touched
    assert "state/" not in git(ws, "ls-tree", "-r", "--name-only", "HEAD", "--", "tasks/T01")
    assert (root / "tasks/T01/state/positions.json").read_text() == '{"600000.SH": 1000}\n'
    # the manifest in the tag
    parsed = parse_tag_message(ws.git.tag_message("T01-v1.2.0"))
    m = parsed.snapshot
    assert parsed.intact and m.git_commit == r.commit and m.python_packages == ("clawdemo-signals==1.0.0",)
    assert {f.path for f in m.files} == {"tasks/T01/config.yaml", "tasks/T01/main.py",
                                         "tasks/T01/requirements.txt", "tasks/T01/signals.py"}
    assert "TUSHARE_TOKEN" in m.environment_variables and "--hash=sha256:" in m.python_lock
    # the task's own environment matches the lock
    py = ws.state_dir / "envs" / "T01" / "current" / "bin" / "python"
    assert deps.installed(py) == ("clawdemo-signals==1.0.0",)
    assert verify_snapshot(ws, "T01", "1.2.0").ok
    assert AuditLog(ws.state_dir).verify().ok
    assert (ws.state_dir / "snapshots" / "snapshot-T01-v1.2.0.yaml").is_file()
    assert list((ws.state_dir / "tmp").iterdir()) == []  # no scratch left behind


def test_new_dependencies_are_locked_and_synced_exactly(adopted: Workspace) -> None:
    ws = adopted
    py = ws.state_dir / "envs" / "T01" / "current" / "bin" / "python"
    subprocess.run([deps.uv_bin(), "pip", "install", "--python", str(py), "clawdemo-risk"],
                   check=True, capture_output=True)  # an extra package, installed by hand
    assert "clawdemo-risk==0.1.0" in deps.installed(py)
    (ws.root / "tasks/T01/requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    r = snap(ws, task_id="T01", bump="minor")
    assert r.packages == ("clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0")
    assert deps.installed(py) == r.packages
    # T02's environment is a different one, untouched
    t02 = ws.state_dir / "envs" / "T02" / "current" / "bin" / "python"
    assert deps.installed(t02) == ("clawdemo-signals==1.0.0",)


def test_other_tasks_uncommitted_work_is_never_committed_or_lost(adopted: Workspace) -> None:
    ws = adopted
    root = ws.root
    (root / "tasks/T02/config.yaml").write_text("version: 2.0.1\nname: edited but not saved\n")
    (root / "tasks/T02/staged.py").write_text("x = 1\n")
    git(ws, "add", "tasks/T02/staged.py")
    (root / "notes.txt").write_text("operator notes\n")
    before = git(ws, "status", "--porcelain", "--untracked-files=all", "--", "tasks/T02", "notes.txt")
    snap(ws, task_id="T01", bump="patch")
    after = git(ws, "status", "--porcelain", "--untracked-files=all", "--", "tasks/T02", "notes.txt")
    assert before == after and "A  tasks/T02/staged.py" in after
    assert git(ws, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        "task_registry.json", "tasks/T01/config.yaml"]


def test_plaintext_secret_refused_without_revealing_it(adopted: Workspace) -> None:
    ws = adopted
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text() + "broker:\n  api_key: sk-live-9f8e7d6c5b4a\n")
    before = state_of(ws)
    with pytest.raises(SecretsFound) as err:
        snap(ws, task_id="T01", bump="patch")
    assert err.value.exit_code == 3 and err.value.paths == ["broker.api_key"]
    assert "sk-live" not in str(err.value) and "broker.api_key" in str(err.value)
    assert state_of(ws) == before
    log = (ws.state_dir / "audit.jsonl").read_text()
    assert "sk-live" not in log
    r = snap(ws, task_id="T01", bump="patch", allow_secrets=["broker.api_key"])
    assert r.version == "1.1.1" and r.warnings


STEPS = ["bump_version", "lock_dependencies", "sync_environment", "commit_task",
         "checksum_files", "tag_snapshot"]


@pytest.mark.parametrize("step_name", STEPS)
def test_failure_after_any_step_leaves_no_half_version(
    adopted: Workspace, monkeypatch: pytest.MonkeyPatch, step_name: str
) -> None:
    ws = adopted
    (ws.root / "tasks/T01/requirements.txt").write_text("clawdemo-signals>=1.1\n")  # env changes too
    (ws.root / "tasks/T01/new.py").write_text("print('new')\n")
    (ws.root / "tasks/T02/config.yaml").write_text("version: 2.0.1\n# unsaved\n")
    before = state_of(ws)
    with monkeypatch.context() as patched:
        patched.setattr(fs, step_name, failing_after(getattr(fs, step_name), step_name))
        with pytest.raises(OperationFailed, match="injected") as err:
            snap(ws, task_id="T01", bump="minor")
    assert "everything was put back" in err.value.message and err.value.exit_code == 1
    assert state_of(ws) == before
    assert ws.git.tag_info("T01-v1.2.0") is None
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["result"] == "failed" and entry["details"]["not_undone"] == []
    assert snap(ws, task_id="T01", bump="minor").version == "1.2.0"  # and it works afterwards


def test_version_rules(adopted: Workspace) -> None:
    ws = adopted
    with pytest.raises(BadInput, match="older"):
        snap(ws, task_id="T01", version="1.0.0")
    with pytest.raises(Conflict, match="already exists"):
        snap(ws, task_id="T01", version="1.1.0")
    with pytest.raises(BadInput):
        snap(ws, task_id="T01", version="1.2.0", bump="patch")
    assert snap(ws, task_id="T01").version == "1.1.1"  # tagged current: patch bump by default
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text().replace("1.1.1", "1.5.0"))
    with pytest.raises(BadInput, match="--version"):
        snap(ws, task_id="T01")  # registry and config disagree: say which to pick
    assert snap(ws, task_id="T01", version="1.5.0").version == "1.5.0"


@pytest.mark.parametrize(("task_id", "error"), [("T99", BadInput), ("T42", NotFound),
                                                ("../T01", BadInput), ("-rf", BadInput)])
def test_bad_tasks_refused(adopted: Workspace, task_id: str, error: type) -> None:
    before = state_of(adopted)
    with pytest.raises(error):
        snap(adopted, task_id=task_id)
    assert state_of(adopted) == before


def test_lock_held_is_a_conflict(adopted: Workspace) -> None:
    with task_lock(adopted.state_dir, "T01", "a rollback"):
        with pytest.raises(Conflict) as err:
            snap(adopted, task_id="T01")
    assert err.value.exit_code == 3 and "a rollback" in err.value.message


def test_init_is_idempotent_and_marks_stable(adopted: Workspace) -> None:
    again = run_init(str(adopted.root))
    assert again.adopted == () and set(again.already_tagged) == {"T01", "T02"}
    reg = json.loads((adopted.root / "task_registry.json").read_text())
    t01 = next(t for t in reg["tasks"] if t["id"] == "T01")
    assert t01["snapshots"][0]["stable"] is True
    ignore = (adopted.root / ".gitignore").read_text()
    assert ".clawback/" in ignore and "!tasks/*/config.yaml" in ignore
    assert git(adopted, "status", "--porcelain", "--", ".gitignore") == ""


def test_init_commits_untracked_task_files_and_warns_about_secrets(tmp_path: Path, offline: dict) -> None:
    from clawback.demo import sample

    root = sample.make_workspace(tmp_path / "w", commit=False)
    cfg = root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text() + "token: 8700abc\n")
    result = run_init(str(root))
    assert not result.failures
    assert any("T02" in w and "token" in w for w in result.warnings)
    assert all("8700abc" not in w for w in result.warnings)
    files = git(Workspace(root), "ls-tree", "-r", "--name-only", "T02-v2.0.1")
    assert "tasks/T02/main.py" in files and "tasks/T01/state/positions.json" not in files


def test_push_to_a_remote_and_a_refused_push(adopted: Workspace, tmp_path: Path) -> None:
    ws = adopted
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(ws, "remote", "add", "origin", str(remote))
    r = snap(ws, task_id="T01", push=True)
    assert r.pushed == "origin" and r.push_error is None
    assert "T01-v1.1.1" in subprocess.run(["git", "tag"], cwd=remote, capture_output=True,
                                          text=True, check=True).stdout
    # the remote's branch moves on elsewhere: our push is rejected, the snapshot stays complete
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(other)], check=True)
    subprocess.run(["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q",
                    "--allow-empty", "-m", "elsewhere"], cwd=other, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=other, check=True)
    r = snap(ws, task_id="T01", push=True)
    assert r.push_error and "refused" in r.push_error and "git push origin" in r.push_error
    assert verify_snapshot(ws, "T01", r.version).ok


def test_snapshot_survives_loss_of_the_working_tree(adopted: Workspace, tmp_path: Path) -> None:
    """A clone carries the manifests: verify-snapshot works on it with no .clawback/ at all."""
    snap(adopted, task_id="T01", bump="minor")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(adopted.root), str(clone)], check=True)
    v = verify_snapshot(Workspace(clone), "T01", "1.2.0")
    assert v.ok and v.snapshot and v.snapshot.python_packages == ("clawdemo-signals==1.0.0",)
