"""Stable marks: promote (registry entry only, committed, journaled) and the automatic rollback
target (the newest stable, non-quarantined version older than the current one)."""

from __future__ import annotations

import pytest

from tasks_lib.core.errors import Conflict, NotFound, OperationFailed, exit_code_for
from tasks_lib.formats.registry import Registry
from tasks_lib.health import stable
from tests.conftest import failing_after, git


def rec(version: str, **marks: bool) -> dict:
    return {"version": version, "git_tag": f"T01-v{version}", **marks}


@pytest.mark.parametrize(("snapshots", "current", "expected"), [
    ([rec("1.1.0", stable=True), rec("1.2.0", stable=True), rec("1.3.0")], "1.3.0", "1.2.0"),
    ([rec("1.1.0", stable=True), rec("1.2.0", stable=True, quarantined=True), rec("1.3.0")],
     "1.3.0", "1.1.0"),
    ([rec("1.1.0", stable=True), rec("1.2.0"), rec("1.3.0")], "1.3.0", "1.1.0"),
    ([rec("1.4.0", stable=True), rec("1.3.0")], "1.3.0", None),          # newer is never a target
    ([rec("1.3.0", stable=True)], "1.3.0", None),                          # nor the current one
    ([rec("1.10.0", stable=True), rec("1.9.0", stable=True), rec("2.0.0")], "2.0.0", "1.10.0"),
    ([rec("1.2.0", stable=True), rec("1.2.0", quarantined=True), rec("1.3.0")], "1.3.0", None),
    ([{"version": "garbage", "stable": True}, rec("1.0.0", stable=True)], "1.3.0", "1.0.0"),
    ([], "1.3.0", None),
    # hotfixes: after their base, before its next patch (docs/design.md "Hotfix releases")
    ([rec("1.2.0", stable=True), rec("1.2.0-hotfix-20260224", stable=True), rec("1.3.0")],
     "1.3.0", "1.2.0-hotfix-20260224"),
    ([rec("1.2.0", stable=True), rec("1.2.0-hotfix-20260224")], "1.2.0-hotfix-20260224", "1.2.0"),
    ([rec("1.2.0", stable=True), rec("1.2.0-hotfix-20260224", stable=True),
      rec("1.2.0-hotfix-20260224-2")], "1.2.0-hotfix-20260224-2", "1.2.0-hotfix-20260224"),
    ([rec("1.2.0-hotfix-20260224-10", stable=True), rec("1.2.0-hotfix-20260224-9", stable=True),
      rec("1.2.0-hotfix-20260301")], "1.2.0-hotfix-20260301", "1.2.0-hotfix-20260224-10"),
    ([rec("1.2.0", stable=True), rec("1.2.0-hotfix-20260224", stable=True, quarantined=True)],
     "1.2.1", "1.2.0"),
    ([rec("1.2.1", stable=True), rec("1.2.0-hotfix-20260224")], "1.2.0-hotfix-20260224", None),
])
def test_rollback_target(snapshots: list, current: str, expected: str | None) -> None:
    assert stable.rollback_target({"snapshots": snapshots}, current) == expected


def test_promoted_marks_a_copy_and_refuses_quarantine_unless_forced() -> None:
    entry = {"id": "T01", "snapshots": [rec("1.2.0", quarantined=True), rec("1.3.0")]}
    out = stable.promoted(entry, "T01", "1.3.0", when="2026-11-29T10:00:00Z", by="ops")
    assert out["snapshots"][1] == {**rec("1.3.0"), "stable": True, "promoted_at": "2026-11-29T10:00:00Z",
                                   "promoted_by": "ops"}
    assert "stable" not in entry["snapshots"][1]                          # the input is untouched
    with pytest.raises(Conflict) as refused:
        stable.promoted(entry, "T01", "1.2.0")
    assert exit_code_for(refused.value) == 3 and "--force" in refused.value.hint
    forced = stable.promoted(entry, "T01", "1.2.0", force=True)
    assert forced["snapshots"][0] == {**rec("1.2.0"), "stable": True}
    with pytest.raises(NotFound):
        stable.promoted(entry, "T01", "9.9.9")


def test_promote_commits_only_the_entry_and_a_failure_changes_nothing(story, monkeypatch) -> None:
    import flows.promote as fp
    from tasks_lib import snapshot

    ws, _ = story
    reg_path = ws.root / "task_registry.json"
    before, head = reg_path.read_bytes(), git(ws, "rev-parse", "HEAD")
    monkeypatch.setattr(fp, "commit_journaled", failing_after(snapshot.commit_journaled, "the commit"))
    with pytest.raises(OperationFailed, match="injected.*everything was put back"):
        fp.run_promote(str(ws.root), "T01", "1.2.0")
    assert reg_path.read_bytes() == before and git(ws, "rev-parse", "HEAD") == head  # undone
    monkeypatch.undo()

    result = fp.run_promote(str(ws.root), "T01", "1.2.0", reason="ran clean for a week")
    assert result.commit and git(ws, "rev-parse", "HEAD").strip() == result.commit
    assert git(ws, "show", "--name-only", "--format=%s", "HEAD").strip().split("\n") == [
        "T01: promote v1.2.0 to stable: ran clean for a week", "", "task_registry.json"]
    entry = Registry.load(reg_path).entry("T01")
    assert [r["version"] for r in entry["snapshots"] if r.get("stable")] == ["1.1.0", "1.2.0"]
    assert stable.rollback_target(entry, "1.3.0") == "1.2.0"
    assert fp.run_promote(str(ws.root), "T01", "1.2.0").commit is None    # already stable: no-op


def test_promote_command(story) -> None:
    import json
    import os
    import subprocess
    import sys

    ws, _ = story

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                              capture_output=True, text=True, check=False, timeout=300,
                              env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none"})

    assert cli("promote", "--task", "T01", "--version", "9.9.9").returncode == 2
    assert cli("promote", "--task", "../T01", "--version", "1.2.0").returncode == 2
    proc = cli("promote", "--task", "T01", "--version", "1.2.0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"]["version"] == "1.2.0"
    assert "stable already" in cli("promote", "--task", "T01", "--version", "1.2.0").stdout
