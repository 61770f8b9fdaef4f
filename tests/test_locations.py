"""Task locations are canonical and disjoint, and one task's malformed entry
never takes the others down (item 4)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import flows.rollback as fr
from clawback.cli import main
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput, MalformedFile
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry
from tasks_lib.status import workspace_status
from tasks_lib.verify_snapshot import verify_snapshot
from tests.conftest import git
from tests.test_snapshot import state_of


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")


def edit_entry(ws: Workspace, task_id: str, **values: object) -> None:
    reg = Registry.load(ws.registry_path)
    entry = reg.entry(task_id)
    entry.update(values)
    reg.set_entry(task_id, entry)
    reg.save()


def cli(ws: Workspace, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main([*args, "--workspace", str(ws.root), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("spelling", ["./tasks/T01", "tasks/T01/.", "tasks//T01", "tasks/T01/",
                                      "./tasks/./T01//"])
def test_odd_spellings_of_a_location_are_one_location(ws: Workspace, spelling: str) -> None:
    edit_entry(ws, "T01", location=spelling)
    git(ws, "commit", "-qam", "odd location")
    run_init(str(ws.root))
    (ws.root / "tasks/T01/extra.py").write_text("X = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    committed = git(ws, "ls-tree", "-r", "--name-only", "HEAD", "--", "tasks/T01").split()
    assert "tasks/T01/extra.py" in committed
    assert not any("/state/" in p for p in committed)                 # state is never committed
    assert json.loads(ws.registry_path.read_text())["tasks"][0]["location"] == spelling  # as written
    assert verify_snapshot(ws, "T01", "1.2.0").ok
    fr.run_rollback(str(ws.root), "T01", "1.1.0")
    assert not (ws.root / "tasks/T01/extra.py").exists()
    assert (ws.root / "tasks/T01/state/positions.json").exists()


@pytest.mark.parametrize(("location", "words"), [
    ("/tmp/elsewhere", "absolute"), ("../outside", "leaves the workspace"),
    ("tasks/../../x", "leaves the workspace"), (".", "the workspace itself"),
    ("", None), (".git/hooks", "reserved"), (".clawback/envs", "reserved"),
    ("-rf", "reserved"), ("tasks\\T01", "not a path"), (["tasks"], "not a path"),
])
def test_locations_outside_the_workspace_are_refused(location: object, words: str | None) -> None:
    from tasks_lib.core.workspace import canonical_location

    if words is None:
        return  # an empty location is "no location" (the task is listed, never touched)
    with pytest.raises(MalformedFile, match=words):
        canonical_location("T01", location)


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_location_is_no_location(ws: Workspace, capsys, blank: str) -> None:
    """One rule for "active" (registry.is_active): the task is listed, never touched."""
    run_init(str(ws.root))
    edit_entry(ws, "T02", location=blank)
    t02 = ws.task("T02", active=False)
    assert not t02.active and t02.location is None
    with pytest.raises(BadInput, match="has no location"):
        ws.task("T02")
    assert [t.id for t in ws.tasks() if t.active] == ["T01"]
    code, doc = cli(ws, "snapshot", "--task", "T02", capsys=capsys)
    assert code == 2 and "has no location" in doc["error"]["message"]


@pytest.mark.parametrize(("t02_location", "how"), [
    ("tasks/T01/sub", "lies inside"), ("tasks/T01", "is also"), ("tasks", "contains"),
])
def test_overlapping_locations_are_refused_naming_both(ws: Workspace, capsys, t02_location: str,
                                                       how: str) -> None:
    run_init(str(ws.root))
    (ws.root / "tasks/T01/sub").mkdir()
    (ws.root / "tasks/T01/sub/config.yaml").write_text("version: 2.0.1\n")
    edit_entry(ws, "T02", location=t02_location)
    before = state_of(ws)
    for argv in (["rollback", "--task", "T01", "--to", "1.1.0"],
                 ["snapshot", "--task", "T02", "--bump", "patch"],
                 ["snapshot", "--task", "T01", "--bump", "patch"]):
        code, doc = cli(ws, *argv, capsys=capsys)
        assert code == 2, doc
        message = doc["error"]["message"]
        assert "T01" in message and "T02" in message
        assert state_of(ws) == before
    assert how in message or "lies inside" in message or "contains" in message


def test_a_location_through_a_symlink_is_refused(ws: Workspace, tmp_path: Path, capsys) -> None:
    run_init(str(ws.root))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "T03").mkdir(parents=True)
    (elsewhere / "T03/config.yaml").write_text("version: 1.0.0\n")
    os.symlink(elsewhere, ws.root / "linked")
    reg = Registry.load(ws.registry_path)
    doc = json.loads(reg.render())
    doc["tasks"].append({"id": "T03", "version": "1.0.0", "status": "active",
                         "location": "linked/T03", "entry_point": "main.py"})
    ws.registry_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    before = sorted(p.name for p in (elsewhere / "T03").iterdir())
    code, out = cli(ws, "snapshot", "--task", "T03", "--version", "1.0.0", capsys=capsys)
    assert code == 2 and "symlink" in out["error"]["message"]
    assert sorted(p.name for p in (elsewhere / "T03").iterdir()) == before
    code, out = cli(ws, "status", capsys=capsys)                     # the others carry on
    rows = {r["id"]: r for r in out["result"]["tasks"]}
    assert rows["T03"]["status"] == "error" and rows["T01"]["status"] == "active"


def test_a_submodule_task_directory_is_refused(ws: Workspace, tmp_path: Path, capsys) -> None:
    run_init(str(ws.root))
    sub = tmp_path / "subrepo"
    sub.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(sub)], check=True)
    (sub / "config.yaml").write_text("version: 1.0.0\n")
    (sub / "main.py").write_text("X = 1\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    subprocess.run(["git", "-C", str(sub), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(sub), "commit", "-qm", "s"], check=True, env=env)
    subprocess.run(["git", "-c", "protocol.file.allow=always", "-C", str(ws.root), "submodule",
                    "add", "-q", str(sub), "tasks/T03"], check=True, env=env, capture_output=True)
    doc = json.loads(ws.registry_path.read_text())
    doc["tasks"].append({"id": "T03", "version": "1.0.0", "status": "active",
                         "location": "tasks/T03", "entry_point": "main.py",
                         "clawback": {"python": "none"}})
    ws.registry_path.write_text(json.dumps(doc, indent=2) + "\n")
    head = git(ws, "rev-parse", "HEAD")
    code, out = cli(ws, "snapshot", "--task", "T03", "--version", "1.0.0", capsys=capsys)
    assert code == 2 and "submodule" in out["error"]["message"]
    assert git(ws, "rev-parse", "HEAD") == head and not ws.git.tag_info("T03-v1.0.0")
    # a nested repository inside a task directory is refused the same way
    nested = ws.root / "tasks/T01/vendor"
    nested.mkdir()
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "lib.py").write_text("X = 1\n")
    with pytest.raises(BadInput, match="nested git repository"):
        run_snapshot(str(ws.root), "T01", bump="patch")


# -- item 4: one task's malformed entry never takes the others down -----------------------
@pytest.mark.parametrize("bad", [
    {"clawback": {"run": {"type": "docker"}}},
    {"clawback": {"state_paths": "state/"}},
    {"location": "/etc"},
    {"entry_point": "../../x.py"},
    {"clawback": {"python": ""}},
])
def test_a_malformed_entry_is_an_error_row_and_the_others_carry_on(ws: Workspace, capsys,
                                                                   bad: dict) -> None:
    run_init(str(ws.root))
    edit_entry(ws, "T02", **bad)
    code, out = cli(ws, "status", capsys=capsys)
    rows = {r["id"]: r for r in out["result"]["tasks"]}
    assert code == 1 and rows["T02"]["status"] == "error" and rows["T02"]["error"]
    assert rows["T01"]["status"] == "active" and rows["T01"]["tagged"]
    assert [r["id"] for r in out["result"]["tasks"]] == ["T01", "T02", "T99"]
    code, out = cli(ws, "status", "--task", "T01", capsys=capsys)
    assert code == 0
    code, out = cli(ws, "history", "--task", "T01", capsys=capsys)
    assert code == 0 and out["result"]["versions"]
    code, out = cli(ws, "history", "--task", "T02", capsys=capsys)
    assert code == 2 and out["result"]["versions"]                      # what it can, and exit 2
    code, out = cli(ws, "status", "--task", "T02", capsys=capsys)
    assert code == 2
    code, out = cli(ws, "verify-snapshot", "--task", "T01", "--version", "1.1.0", capsys=capsys)
    assert code == 0
    from tasks_lib.health.checkup import check_tasks

    verdicts = {r.task_id: r.verdict for r in check_tasks(ws)}
    assert verdicts["T02"] == "error" and verdicts["T01"] != "error"
    (ws.root / "tasks/T01/extra.py").write_text("X = 1\n")
    assert run_snapshot(str(ws.root), "T01", bump="patch").version == "1.1.1"
    assert [r.id for r in workspace_status(ws) if r.error] == ["T02"]
