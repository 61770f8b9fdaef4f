"""sync-registry: every mismatch kind produced for real (a tag fetched from another clone, a
hand-edited config, a deleted tag, a tag on a commit no branch reaches, a missing location, an
edited record, an unusable entry), the repairs and their idempotence, --task scoping, list and
mapping registries, other work left alone, secrets never shown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flows.init import run_init
from flows.snapshot import run_snapshot
from flows.sync_registry import run_sync_registry
from tasks_lib import registry_sync
from tasks_lib.core.errors import BadInput, NotFound
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry

SECRET = "ghp_Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc"


def sh(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def make(root: Path, *, form: str = "list", n: int = 2) -> Workspace:
    """Tasks T01.. (no dependencies, Chinese text, runtime state), T99 deleted; adopted."""
    root.mkdir(parents=True)
    sh(root, "init", "-q", "-b", "main")
    sh(root, "config", "user.name", "Op")
    sh(root, "config", "user.email", "op@example.invalid")
    entries = []
    for i in range(1, n + 1):
        tid = f"T{i:02d}"
        d = root / "tasks" / tid
        (d / "state").mkdir(parents=True)
        (d / "config.yaml").write_text(f"# 任务 {tid}\nversion: 1.0.0  # managed\nname: 涨停\n",
                                       encoding="utf-8")
        (d / "main.py").write_text("print('你好')\n", encoding="utf-8")
        (d / "state" / "positions.json").write_text("{}\n")
        entries.append({"id": tid, "name": f"任务{tid}", "version": "1.0.0", "status": "active",
                        "location": f"tasks/{tid}", "entry_point": "main.py",
                        "clawback": {"python": "none"}})
    entries.append({"id": "T99", "version": "0.0.0", "status": "deleted", "location": None})
    tasks: Any = entries if form == "list" else {e.pop("id"): e for e in entries}
    (root / "task_registry.json").write_text(
        json.dumps({"tasks": tasks}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sh(root, "add", "-A")
    sh(root, "commit", "-qm", "workspace")
    result = run_init(str(root))
    assert not result.failures, result.failures
    return Workspace(root.resolve())


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.setenv("CLAWBACK_ACTOR", "tester@ci")
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)


@pytest.fixture
def small(tmp_path: Path) -> Workspace:
    return make(tmp_path / "ws")


def kinds(report: registry_sync.SyncReport) -> list[tuple[str, str]]:
    return [(f.task, f.kind) for f in report.findings]


def world(ws: Workspace) -> dict[str, Any]:
    files = {}
    for p in sorted((ws.root / "tasks").rglob("*")):
        files[str(p.relative_to(ws.root))] = p.read_bytes() if p.is_file() else None
    return {"files": files, "registry": ws.registry_path.read_bytes(),
            "head": sh(ws.root, "rev-parse", "HEAD"), "index": sh(ws.root, "ls-files", "-s"),
            "tags": sh(ws.root, "tag", "-l"), "refs": sh(ws.root, "for-each-ref")}


def clone_with_release(ws: Workspace, tmp_path: Path, task: str = "T01") -> Path:
    """Another clone of the workspace that snapshotted ``task`` 1.1.0."""
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(ws.root), str(other)], check=True)
    sh(other, "config", "user.name", "Other")
    sh(other, "config", "user.email", "other@example.invalid")
    (other / "tasks" / task / "main.py").write_text("print('1.1.0 在另一台机器')\n", encoding="utf-8")
    run_snapshot(str(other), task, bump="minor", message="made elsewhere")
    return other


def test_an_adopted_workspace_agrees(small: Workspace) -> None:
    report = registry_sync.check(small)
    assert report.ok, [f.line() for f in report.findings]
    assert report.tasks == ("T01", "T02") and report.skipped == ("T99",)


def test_a_tag_fetched_from_another_clone_is_recorded(small: Workspace, tmp_path: Path) -> None:
    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "main:refs/remotes/other/main",
       "tag", "T01-v1.1.0")
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "tag-without-record")]   # reached by other/main: no orphan
    finding = report.findings[0]
    assert finding.repair is not None and finding.tag == "T01-v1.1.0"
    head = sh(small.root, "rev-parse", "HEAD").strip()
    result = run_sync_registry(str(small.root))
    assert result.ok and len(result.repaired) == 1
    commit = result.repaired[0].commit
    assert sh(small.root, "rev-parse", "HEAD~1").strip() == head
    assert sh(small.root, "show", "--name-only", "--format=", commit).split() == \
        ["task_registry.json"]
    record = Registry.load(small.registry_path).entry("T01")["snapshots"][-1]
    tag_message = small.git.tag_message("T01-v1.1.0")
    assert record["git_tag"] == "T01-v1.1.0" and record["created_at"] in tag_message
    assert Registry.load(small.registry_path).entry("T01")["version"] == "1.0.0"  # config: 1.0.0
    # idempotent: nothing left, a second run changes nothing
    assert registry_sync.check(small).ok
    again = run_sync_registry(str(small.root))
    assert again.ok and not again.repaired
    assert sh(small.root, "rev-parse", "HEAD").strip() == commit
    audit = [json.loads(line) for line in (small.state_dir / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["action"] == "sync-registry" and audit[-1]["result"] == "ok"
    assert audit[-1]["details"]["commit"] == commit


def test_a_fetched_tag_no_branch_reaches_and_its_files_checked_out(small: Workspace,
                                                                   tmp_path: Path) -> None:
    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "tag", "T01-v1.1.0")
    sh(small.root, "checkout", "T01-v1.1.0", "--", "tasks/T01")  # config.yaml now says 1.1.0
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "version-mismatch"), ("T01", "tag-without-record"),
                             ("T01", "tag-unreachable")]
    assert report.findings[0].repair is not None              # 1.1.0 is tagged: no guess
    assert "git branch keep/T01-v1.1.0 T01-v1.1.0" in report.findings[2].line()
    result = run_sync_registry(str(small.root))
    assert not result.ok                                       # the orphan needs a person
    assert [f.kind for f in result.remaining.findings] == ["tag-unreachable"]
    entry = Registry.load(small.registry_path).entry("T01")
    assert entry["version"] == "1.1.0" and entry["snapshots"][-1]["git_tag"] == "T01-v1.1.0"
    # the registry commit holds the registry only; the checked-out files stay staged, uncommitted
    assert sh(small.root, "show", "--name-only", "--format=", "HEAD").split() == \
        ["task_registry.json"]
    assert "tasks/T01/main.py" in sh(small.root, "diff", "--cached", "--name-only")
    assert not run_sync_registry(str(small.root)).repaired   # idempotent


def test_a_hand_edited_config_needs_a_snapshot(small: Workspace) -> None:
    cfg = small.root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("1.0.0", "1.0.1"), encoding="utf-8")
    report = registry_sync.check(small)
    assert kinds(report) == [("T02", "version-mismatch"), ("T02", "not-snapshotted")]
    assert all(f.repair is None for f in report.findings)
    assert report.findings[0].fix == "clawback snapshot --task T02 --version 1.0.1"
    before = world(small)
    result = run_sync_registry(str(small.root))               # nothing it may guess
    assert not result.ok and not result.repaired and world(small) == before


def test_a_bump_in_both_never_snapshotted(small: Workspace) -> None:
    cfg = small.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("1.0.0", "1.1.0"), encoding="utf-8")
    reg = Registry.load(small.registry_path)
    entry = reg.entry("T01")
    entry["version"] = "1.1.0"
    reg.set_entry("T01", entry)
    reg.save()
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "not-snapshotted")]
    assert report.findings[0].fix == "clawback snapshot --task T01"


def test_a_deleted_tag_and_an_edited_record(small: Workspace) -> None:
    sh(small.root, "tag", "-d", "T02-v1.0.0")
    reg = Registry.load(small.registry_path)
    entry = reg.entry("T01")
    entry["snapshots"][0]["created_at"] = "2020-01-01T00:00:00Z"
    entry["snapshots"].append({"version": "1.0.0", "git_tag": "T01-v1.0.0",
                               "created_at": entry["snapshots"][0]["created_at"],
                               "digest": "sha256:" + "0" * 64})
    reg.set_entry("T01", entry)
    reg.save()
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "record-mismatch"), ("T01", "record-mismatch"),
                             ("T02", "not-snapshotted"), ("T02", "record-tag-missing")]
    assert "created_at" in report.findings[0].detail
    assert "digest" in report.findings[1].detail
    assert all(f.repair is None for f in report.findings)


def test_a_tag_on_an_orphan_commit_and_a_lightweight_tag(small: Workspace) -> None:
    sh(small.root, "checkout", "-q", "-b", "side")
    (small.root / "tasks/T01/main.py").write_text("print('side')\n")
    run_snapshot(str(small.root), "T01", bump="minor")
    sh(small.root, "checkout", "-q", "-f", "main")
    sh(small.root, "branch", "-q", "-D", "side")
    empty = sh(small.root, "hash-object", "-t", "tree", "/dev/null").strip()
    orphan = sh(small.root, "commit-tree", empty, "-m", "orphan").strip()
    sh(small.root, "tag", "T02-v3.0.0", orphan)                 # lightweight, on an orphan
    sh(small.root, "tag", "T02-v3.0.1", empty)                  # on a tree: never a commit
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "tag-without-record"), ("T01", "tag-unreachable"),
                             ("T02", "tag-without-record"), ("T02", "tag-without-record"),
                             ("T02", "tag-unreachable")]
    assert report.findings[0].repair is not None               # a sound manifest
    assert report.findings[2].repair is None and "lightweight" in report.findings[2].detail
    assert report.findings[4].tag == "T02-v3.0.0"                # the tree is no commit


def test_a_missing_location_and_an_unusable_entry_do_not_stop_the_rest(small: Workspace) -> None:
    shutil.rmtree(small.root / "tasks/T02")
    doc = json.loads(small.registry_path.read_text(encoding="utf-8"))
    doc["tasks"].append({"id": "T05", "version": "1.0.0", "location": "/etc"})
    doc["tasks"].append(17)
    small.registry_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    sh(small.root, "tag", "-d", "T01-v1.0.0")
    report = registry_sync.check(small)
    assert kinds(report) == [("T01", "not-snapshotted"), ("T01", "record-tag-missing"),
                             ("T02", "location-missing"), ("T05", "unusable-entry"),
                             ("tasks[4]", "unusable-entry")]
    assert report.findings[2].fix == "clawback recover --task T02 --target-version 1.0.0"


def test_task_scoping_and_bad_input(small: Workspace) -> None:
    sh(small.root, "tag", "-d", "T02-v1.0.0")
    assert registry_sync.check(small, "T01").ok
    assert {f.task for f in registry_sync.check(small, "T02").findings} == {"T02"}
    before = world(small)
    for bad in ("../x", "-rf", "1.2.0;rm", "T01\n", ""):
        with pytest.raises(BadInput):
            run_sync_registry(str(small.root), bad)
    with pytest.raises(BadInput, match="deleted"):
        run_sync_registry(str(small.root), "T99")
    with pytest.raises(NotFound):
        run_sync_registry(str(small.root), "T42")
    assert world(small) == before


def test_mapping_registry(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", form="mapping")
    assert registry_sync.check(ws).ok
    text = ws.registry_path.read_text(encoding="utf-8")
    sh(ws.root, "tag", "-d", "T01-v1.0.0")
    other = tmp_path / "c"
    subprocess.run(["git", "clone", "-q", str(ws.root), str(other)], check=True)
    sh(other, "config", "user.name", "O")
    sh(other, "config", "user.email", "o@example.invalid")
    (other / "tasks/T02/main.py").write_text("print(2)\n")
    run_snapshot(str(other), "T02", bump="patch")
    sh(ws.root, "fetch", "-q", str(other), "tag", "T02-v1.0.1")
    sh(ws.root, "checkout", "T02-v1.0.1", "--", "tasks/T02/config.yaml")
    result = run_sync_registry(str(ws.root))
    after = ws.registry_path.read_text(encoding="utf-8")
    assert json.loads(after)["tasks"]["T02"]["version"] == "1.0.1"
    assert "id" not in json.loads(after)["tasks"]["T02"]
    # only T02's entry changed: T01's text (and everything else) is as it was
    t01 = json.dumps(json.loads(text)["tasks"]["T01"], indent=2, ensure_ascii=False)
    assert t01.replace("\n", "\n    ") in after
    assert [f.kind for f in result.remaining.findings] == ["not-snapshotted", "record-tag-missing",
                                                           "tag-unreachable"]


def test_other_staged_and_unstaged_work_is_untouched(small: Workspace, tmp_path: Path) -> None:
    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "main:refs/remotes/other/main",
       "tag", "T01-v1.1.0")
    (small.root / "tasks/T02/main.py").write_text("print('staged')\n")
    sh(small.root, "add", "tasks/T02/main.py")
    (small.root / "tasks/T02/main.py").write_text("print('unstaged on top')\n")
    (small.root / "tasks/T02/new.py").write_text("N = 1\n")      # untracked
    staged = sh(small.root, "ls-files", "-s", "tasks/T02")
    run_sync_registry(str(small.root))
    assert sh(small.root, "ls-files", "-s", "tasks/T02") == staged
    assert (small.root / "tasks/T02/main.py").read_text() == "print('unstaged on top')\n"
    assert (small.root / "tasks/T02/new.py").exists()
    assert sh(small.root, "show", "--name-only", "--format=", "HEAD").split() == \
        ["task_registry.json"]


def test_another_tasks_pending_registry_edit_stays_uncommitted(small: Workspace,
                                                                tmp_path: Path) -> None:
    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "main:refs/remotes/other/main",
       "tag", "T01-v1.1.0")
    reg = Registry.load(small.registry_path)
    entry = reg.entry("T02")
    entry["owner"] = "pending edit"
    reg.set_entry("T02", entry)
    reg.save()
    run_sync_registry(str(small.root))
    committed = json.loads(sh(small.root, "show", "HEAD:task_registry.json"))
    assert "owner" not in committed["tasks"][1]
    assert len(committed["tasks"][0]["snapshots"]) == 2
    assert Registry.load(small.registry_path).entry("T02")["owner"] == "pending edit"


def test_secrets_in_an_entry_never_reach_output_commits_or_the_audit(small: Workspace,
                                                                     tmp_path: Path) -> None:
    clone_with_release(small, tmp_path)
    sh(small.root, "fetch", "-q", str(tmp_path / "other"), "tag", "T01-v1.1.0")
    reg = Registry.load(small.registry_path)
    entry = reg.entry("T02")
    entry["version"] = SECRET                       # a secret where a version should be
    entry["api_token"] = SECRET
    reg.set_entry("T02", entry)
    reg.save()
    report = registry_sync.check(small)
    assert SECRET not in json.dumps(report.as_dict())
    assert SECRET not in "\n".join(f.line() for f in report.findings)
    result = run_sync_registry(str(small.root))
    assert SECRET not in json.dumps(result.as_dict())
    assert SECRET not in sh(small.root, "log", "--all", "--format=%B")
    assert SECRET not in (small.state_dir / "audit.jsonl").read_text()
    code = subprocess.run([os.sys.executable, "-m", "clawback", "sync-registry", "--check",
                           "--json", "--workspace", str(small.root)], capture_output=True,
                          text=True, env={**os.environ, "GITHUB_TOKEN": "x"})
    assert SECRET not in code.stdout + code.stderr and code.returncode == 1
