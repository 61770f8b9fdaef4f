"""The toolbox on the generated large workspace (6,000 files, a list registry with deleted
tasks, links into state, Chinese text, T03's token moved to ${TUSHARE_TOKEN}): sync-registry
repairs a fetched tag's missing record and a registry left behind its tagged config, touching
nothing but the registry, and preview/diff of the repaired version agree with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks_lib.core.workspace import Workspace


def cb(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CLAWBACK_ORCHESTRATOR="none")
    return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          capture_output=True, text=True, env=env)


def git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.root, check=True, capture_output=True,
                          text=True).stdout


def test_sync_registry_repairs_the_large_workspace_and_nothing_else(
        large_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "value-never-shown")
    assert cb(large_ws, "sync-registry", "--check").returncode == 0
    # another clone makes T03 1.0.1 and pushes it; this clone fetches branch and tag
    remote = tmp_path / "remote.git"
    git(large_ws, "init", "-q", "--bare", str(remote))
    git(large_ws, "push", "-q", "--no-verify", str(remote), "main", "--tags")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(other)], check=True)
    for key, value in (("user.name", "Other"), ("user.email", "other@example.invalid")):
        subprocess.run(["git", "-C", str(other), "config", key, value], check=True)
    (other / "tasks/T03/main.py").write_text('print("北向资金 v2")\n', encoding="utf-8")
    made = subprocess.run([sys.executable, "-m", "clawback", "snapshot", "--task", "T03",
                           "--bump", "patch", "-m", "另一台机器", "--workspace", str(other)],
                          capture_output=True, text=True,
                          env=dict(os.environ, CLAWBACK_ORCHESTRATOR="none"))
    assert made.returncode == 0, made.stderr
    subprocess.run(["git", "-C", str(other), "push", "-q", "--no-verify", "origin", "main",
                    "--tags"], check=True)
    git(large_ws, "remote", "add", "origin", str(remote))
    git(large_ws, "fetch", "-q", "--tags", "origin")
    git(large_ws, "merge", "-q", "--ff-only", "origin/main")
    # this clone's registry lost T03's version and record (an agent's hand edit, say)
    reg_path = large_ws.registry_path
    reg = json.loads(reg_path.read_text(encoding="utf-8"))
    t03 = next(t for t in reg["tasks"] if t["id"] == "T03")
    t03["version"], t03["snapshots"] = "1.0.0", t03["snapshots"][:1]
    reg_path.write_text(json.dumps(reg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    git(large_ws, "commit", "-q", "--no-verify", "-am", "registry edited by hand")
    (large_ws.root / "tasks/T01/因子/pkg000/mod00000.py").write_text("# unstaged work\n")
    (large_ws.root / "tasks/T02/lib/pkg000/mod00001.py").write_text("# staged work\n")
    git(large_ws, "add", "tasks/T02/lib/pkg000/mod00001.py")
    status_before = git(large_ws, "status", "--porcelain", "-z", "--", "tasks")

    check = cb(large_ws, "sync-registry", "--check", "--json")
    kinds = {(f["task"], f["kind"]) for f in json.loads(check.stdout)["result"]["findings"]}
    assert check.returncode == 1 and ("T03", "version-mismatch") in kinds
    assert ("T03", "tag-without-record") in kinds
    head = git(large_ws, "rev-parse", "HEAD").strip()
    fixed = cb(large_ws, "sync-registry")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert git(large_ws, "diff", "--name-only", head, "HEAD").split() == ["task_registry.json"]
    assert git(large_ws, "status", "--porcelain", "-z", "--", "tasks") == status_before
    entry = next(t for t in json.loads(reg_path.read_text(encoding="utf-8"))["tasks"]
                 if t["id"] == "T03")
    assert entry["version"] == "1.0.1"
    assert [s["version"] for s in entry["snapshots"]] == ["1.0.0", "1.0.1"]
    again = cb(large_ws, "sync-registry")
    assert again.returncode == 0 and git(large_ws, "rev-parse", "HEAD").strip() != head
    assert cb(large_ws, "sync-registry", "--check").returncode == 0
    assert git(large_ws, "rev-list", "--count", f"{head}..HEAD").strip() == "1"  # idempotent

    shown = cb(large_ws, "preview", "--task", "T03", "--version", "1.0.1")
    assert shown.returncode == 0 and "另一台机器" in shown.stdout
    diff = cb(large_ws, "diff", "--task", "T03", "--v1", "1.0.0", "--v2", "1.0.1", "--json")
    assert diff.returncode == 0
    changed = [f["path"] for f in json.loads(diff.stdout)["result"]["code"]["files"]]
    assert sorted(changed) == ["tasks/T03/config.yaml", "tasks/T03/main.py"]
    for out in (check.stdout, fixed.stdout, shown.stdout, diff.stdout):
        assert "value-never-shown" not in out and "8700a1b2" not in out
