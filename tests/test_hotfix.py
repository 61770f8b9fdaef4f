"""Hotfix releases (docs/design.md, "Hotfix releases") on real git workspaces and environments:
``snapshot --hotfix`` on top of a stable version, repeats the same day, verify, rollback from and
to a hotfix, promote, history, status, and the refusals (nothing changed)."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import flows.snapshot as fs
from flows.init import run_init
from flows.promote import run_promote
from flows.rollback import run_rollback
from tasks_lib import status
from tasks_lib.core import ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import parse_tag_message
from tasks_lib.health import stable
from tasks_lib.verify_snapshot import verify_snapshot
from tests.conftest import git


def today() -> str:
    return clock.format(clock.now_utc(), "%Y%m%d")


def clawback(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def released(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """T01: 1.1.0 (stable, from init), 1.2.0 promoted stable, then 1.3.0 current."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "signals.py").write_text("def score():\n    return 1\n")
    fs.run_snapshot(str(ws.root), "T01", bump="minor")                 # 1.2.0
    run_promote(str(ws.root), "T01", "1.2.0")
    (t01 / "signals.py").write_text("def score():\n    return 3\n")
    fs.run_snapshot(str(ws.root), "T01", bump="minor")                 # 1.3.0
    return ws


def world(ws: Workspace) -> dict[str, object]:
    """What a refused hotfix must leave as it was."""
    root = ws.root
    env = ws.state_dir / "envs" / "T01" / "current"
    return {
        "head": git(ws, "rev-parse", "HEAD"), "tags": git(ws, "tag", "-l"),
        "refs": git(ws, "for-each-ref"),
        "index": git(ws, "ls-files", "-s"),
        "status": git(ws, "status", "--porcelain", "--untracked-files=all"),
        "registry": (root / "task_registry.json").read_bytes(),
        "config": (root / "tasks/T01/config.yaml").read_bytes(),
        "files": {p.name: p.read_bytes() for p in (root / "tasks/T01").iterdir() if p.is_file()},
        "state": (root / "tasks/T01/state/positions.json").read_bytes(),
        "env": os.readlink(env) if env.is_symlink() else None,
        "journal": sorted(os.listdir(ws.state_dir / "journal"))
        if (ws.state_dir / "journal").is_dir() else [],
    }


def test_hotfix_release_round_trip(released: Workspace) -> None:
    ws, root = released, released.root
    t01 = root / "tasks/T01"
    run_rollback(str(root), "T01", "1.2.0", reason="1.3.0 misbehaves")
    cfg_before = (t01 / "config.yaml").read_text()
    (t01 / "signals.py").write_text("def score():\n    return 2  # 修复: the fix\n")
    r = fs.run_snapshot(str(root), "T01", hotfix=True, message="修复 score")
    day = today()
    hot1 = f"1.2.0-hotfix-{day}"
    assert (r.version, r.from_version, r.tag) == (hot1, "1.2.0", f"T01-v{hot1}")
    # config.yaml: only its version line, edited in place; the registry reads the same id
    diff = [d for d in difflib.ndiff(cfg_before.splitlines(), (t01 / "config.yaml").read_text()
                                      .splitlines()) if d[:1] in "+-"]
    assert diff == ["- version: 1.2.0   # managed by clawback",
                    f"+ version: {hot1}   # managed by clawback"]
    entry = ws.task("T01").entry
    assert entry["version"] == hot1
    assert entry["snapshots"][-1] == {**entry["snapshots"][-1], "version": hot1,
                                      "git_tag": f"T01-v{hot1}", "hotfix_of": "1.2.0"}
    # its own manifest, on the fixed code, naming its base; verify-snapshot passes
    parsed = parse_tag_message(ws.git.tag_message(f"T01-v{hot1}"))
    assert parsed.intact and parsed.snapshot.hotfix_of == "1.2.0"
    assert parsed.snapshot.git_commit == r.commit
    assert git(ws, "show", f"T01-v{hot1}:tasks/T01/signals.py").startswith("def score():\n    return 2")
    assert verify_snapshot(ws, "T01", hot1).ok
    # the old manifests still verify byte for byte (no hotfix_of key in them)
    assert '"hotfix_of"' not in ws.git.tag_message("T01-v1.2.0")
    assert verify_snapshot(ws, "T01", "1.2.0").ok and verify_snapshot(ws, "T01", "1.1.0").ok

    # a repeat the same UTC day: -2, on top of the first hotfix (same base)
    (t01 / "signals.py").write_text("def score():\n    return 2.5\n")
    r2 = fs.run_snapshot(str(root), "T01", hotfix=True, message="second fix")
    hot2 = f"{hot1}-2"
    assert (r2.version, r2.from_version, r2.tag) == (hot2, hot1, f"T01-v{hot2}")
    assert verify_snapshot(ws, "T01", hot2).ok

    # history: both as versions with their base, in release order
    h = status.task_history(ws, "T01")
    rows = {v["version"]: v for v in h.versions}
    assert [v["version"] for v in h.versions] == ["1.1.0", "1.2.0", hot1, hot2, "1.3.0"]
    assert rows[hot1]["hotfix_of"] == "1.2.0" and rows[hot1]["kind"] == "hotfix"
    assert "hotfix_of" not in rows["1.2.0"]

    # rollback from the second hotfix to the first: the tag says which hotfix it left
    back = run_rollback(str(root), "T01", hot1, reason="second fix was wrong")
    assert back.tag == f"T01-v{hot1}-rollback-from-v{hot2}"
    tag = ids.parse_tag(back.tag)
    assert tag and (tag.kind, tag.version, tag.from_version, tag.repeat) == ("rollback", hot1, hot2, 1)
    assert (t01 / "signals.py").read_text().startswith("def score():\n    return 2  #")
    # ... and from the first hotfix to its base: its repeat (-1) is written, never ambiguous
    back = run_rollback(str(root), "T01", "1.2.0")
    assert back.tag == f"T01-v1.2.0-rollback-from-v{hot1}-1"
    tag = ids.parse_tag(back.tag)
    assert tag and (tag.version, tag.from_version, tag.repeat) == ("1.2.0", hot1, 1)
    # rollback *to* a hotfix, then the same pairs again: each gets its own suffix, which
    # follows the hotfix's explicit repeat
    assert run_rollback(str(root), "T01", hot2).tag == f"T01-v{hot2}-rollback-from-v1.2.0"
    assert ws.task("T01").version == hot2 and f"version: {hot2} " in (t01 / "config.yaml").read_text()
    again = run_rollback(str(root), "T01", hot1).tag
    assert again == f"T01-v{hot1}-rollback-from-v{hot2}-2"
    assert (ids.parse_tag(again).from_version, ids.parse_tag(again).repeat) == (hot2, 2)
    again = run_rollback(str(root), "T01", "1.2.0").tag
    assert again == f"T01-v1.2.0-rollback-from-v{hot1}-1-2"
    assert (ids.parse_tag(again).from_version, ids.parse_tag(again).repeat) == (hot1, 2)
    pairs = [(x["from_version"], x["to_version"]) for x in status.task_history(ws, "T01").rollbacks]
    assert pairs[-5:] == [(hot2, hot1), (hot1, "1.2.0"), ("1.2.0", hot2), (hot2, hot1),
                          (hot1, "1.2.0")]

    # promote a hotfix (quarantined by the rollback from it: --force lifts it)
    with pytest.raises(Conflict):
        run_promote(str(root), "T01", hot2)
    run_promote(str(root), "T01", hot2, force=True)
    assert stable.is_stable(ws.task("T01").entry, hot2)
    # status: the current version tagged, no drift
    t = next(t for t in status.workspace_status(ws) if t.id == "T01")
    assert (t.version, t.tagged, t.drift) == ("1.2.0", True, ())
    run_rollback(str(root), "T01", hot2)
    t = next(t for t in status.workspace_status(ws) if t.id == "T01")
    assert (t.version, t.tagged, t.drift) == (hot2, True, ())
    assert hot2 in t.stable


def test_bump_after_a_hotfix_bumps_its_base(released: Workspace) -> None:
    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 9\n")
    hot = fs.run_snapshot(str(root), "T01", hotfix=True).version
    # 1.2.1 does not exist: a plain snapshot from the hotfix is 1.2.1
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 10\n")
    r = fs.run_snapshot(str(root), "T01", bump="patch")
    assert (r.from_version, r.version) == (hot, "1.2.1")
    assert verify_snapshot(ws, "T01", "1.2.1").ok


def test_hotfix_of_an_explicit_base_from_a_hotfix_and_a_bump_that_exists(released: Workspace) -> None:
    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.1.0")
    (root / "tasks/T01/main.py").write_text((root / "tasks/T01/main.py").read_text() + "# fix\n")
    r = fs.run_snapshot(str(root), "T01", hotfix=True, base="v1.1.0")
    assert r.version == f"1.1.0-hotfix-{today()}"
    # from 1.1.0's hotfix, --bump minor is 1.2.0, which exists: the usual exit 3
    before = world(ws)
    proc = clawback(ws, "snapshot", "--task", "T01", "--bump", "minor")
    assert proc.returncode == 3 and "T01-v1.2.0 already exists" in proc.stderr
    assert world(ws) == before


def test_hotfix_dated_before_a_newer_one_is_refused(released: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock went back: a hotfix that would sort before the current one is refused."""
    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    monkeypatch.setattr(clock, "now_utc", lambda: datetime(2031, 5, 2, 12, tzinfo=UTC))
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 4\n")
    assert fs.run_snapshot(str(root), "T01", hotfix=True).version == "1.2.0-hotfix-20310502"
    monkeypatch.setattr(clock, "now_utc", lambda: datetime(2031, 5, 1, 12, tzinfo=UTC))
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 5\n")
    before = world(ws)
    with pytest.raises(Conflict, match="clock"):
        fs.run_snapshot(str(root), "T01", hotfix=True)
    assert world(ws) == before


def test_json_output_and_history_text(released: Workspace) -> None:
    ws = released
    run_rollback(str(ws.root), "T01", "1.2.0")
    proc = clawback(ws, "snapshot", "--task", "T01", "--hotfix", "--base", "1.2.0", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["result"]
    assert doc["version"] == f"1.2.0-hotfix-{today()}" and doc["tag"] == f"T01-v{doc['version']}"
    assert doc["hotfix_of"] == "1.2.0"
    hist = json.loads(clawback(ws, "history", "--task", "T01", "--json").stdout)["result"]
    row = next(v for v in hist["versions"] if v["version"] == doc["version"])
    assert (row["kind"], row["hotfix_of"], row["tag"]) == ("hotfix", "1.2.0", doc["tag"])
    text = clawback(ws, "history", "--task", "T01")
    assert text.returncode == 0 and "hotfix of 1.2.0" in text.stdout
    verify = clawback(ws, "verify-snapshot", "--task", "T01", "--version", doc["version"])
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--hotfix", "--bump", "patch"], 2, "not allowed with"),
    (["--hotfix", "--version", "1.4.0"], 2, "not allowed with"),
    (["--base", "1.2.0"], 2, "only for a hotfix"),
    (["--version", "1.3.0-hotfix-20260224"], 2, "made by `clawback snapshot --hotfix"),
    (["--hotfix", "--base", "9.9.9"], 2, "stable versions of T01: 1.1.0, 1.2.0"),
    (["--hotfix", "--base", "../x"], 2, "invalid version"),
    (["--hotfix", "--base=-rf"], 2, "invalid version"),
    (["--hotfix", "--base", "1.2.0;rm -rf /"], 2, "invalid version"),
    (["--hotfix", "--base", "1.2.0\n"], 2, "invalid version"),
    (["--hotfix", "--base", "1.2.0-hotfix-20260224"], 2, "pass --base 1.2.0"),
    (["--hotfix", "--base", "1.2.0-hotfix-20260230"], 2, "invalid version"),
    (["--hotfix", "--base", "1.3.0"], 3, "not marked stable"),
    (["--hotfix"], 3, "not marked stable"),       # default base: the current 1.3.0
    (["--hotfix", "--base", "1.2.0"], 3, "clawback rollback --task T01 --to 1.2.0"),
    (["--hotfix", "--task", "../T01"], 2, "letters, digits"),
])
def test_refusals_change_nothing(released: Workspace, args: list[str], code: int,
                                 words: str) -> None:
    ws = released
    task = [] if "--task" in args else ["--task", "T01"]
    before = world(ws)
    proc = clawback(ws, "snapshot", *task, *args)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert world(ws) == before


def test_quarantined_base_refused(released: Workspace) -> None:
    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    run_rollback(str(root), "T01", "1.1.0")            # 1.2.0 is quarantined now
    run_promote(str(root), "T01", "1.3.0", force=True)  # (some other stable version to name)
    before = world(ws)
    proc = clawback(ws, "snapshot", "--task", "T01", "--hotfix", "--base", "1.2.0")
    assert proc.returncode == 3 and "quarantined" in proc.stderr
    assert "stable versions of T01: 1.1.0, 1.3.0" in proc.stderr
    assert world(ws) == before


def test_hand_written_hotfix_version_is_not_snapshotted_plainly(released: Workspace) -> None:
    """A hotfix id typed into the registry and config by hand is no hotfix release: refused."""
    ws, root = released, released.root
    fake = "1.3.0-hotfix-20260224"
    for path in (root / "task_registry.json", root / "tasks/T01/config.yaml"):
        text = path.read_text()
        path.write_text(text.replace('"version": "1.3.0"', f'"version": "{fake}"', 1)
                        .replace("version: 1.3.0", f"version: {fake}", 1))
    before = world(ws)
    proc = clawback(ws, "snapshot", "--task", "T01")
    assert proc.returncode == 2 and "never snapshotted" in proc.stderr
    assert world(ws) == before


def test_flow_parameter_types_take_a_hotfix_id_and_refuse_junk() -> None:
    from prefect.utilities.callables import parameter_schema
    from pydantic import TypeAdapter, ValidationError

    from flows.prefect_flows import Version, snapshot_flow

    adapter = TypeAdapter(Version)
    for good in ("1.2.0", "v1.2.0", "1.2.0-hotfix-20260224", "1.2.0-hotfix-20260224-2",
                 "10.0.3-hotfix-20261231-9999"):
        assert adapter.validate_python(good) == good
    for bad in ("1.2.0-hotfix-2026022", "1.2.0-hotfix-20260224-1", "1.2.0-hotfix-20261301",
                "1.2.0-hotfix-20260224-0", "1.2.0;rm", "../x", "-rf", "1.2.0-rc1",
                "1.2.0-hotfix-20260224-10000", "1.2.0-hotfix-"):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
    props = parameter_schema(snapshot_flow).model_dump()["properties"]
    assert props["hotfix"]["type"] == "boolean" and props["hotfix"]["default"] is False
    assert any(b.get("pattern") == ids.VERSION_PATTERN for b in props["base"]["anyOf"])
    assert "stable version" in props["base"]["description"]


def test_hostile_values_never_reach_git(released: Workspace, tmp_path: Path) -> None:
    """A --base that would be an option or a path to git is refused before git runs."""
    ws = released
    marker = tmp_path / "pwned"
    before = world(ws)
    for base in (f"--upload-pack=touch {marker}", "$(touch /tmp/x)", "1.2.0 ", "１.２.０"):
        proc = clawback(ws, "snapshot", "--task", "T01", "--hotfix", f"--base={base}")
        assert proc.returncode == 2, (base, proc.stderr)
    assert not marker.exists() and world(ws) == before


def test_hotfix_on_the_large_workspace(large_ws: Workspace,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """6,000 files, a list registry with deleted tasks, a tracked link into state, Chinese names,
    a token moved to ${TUSHARE_TOKEN}: a hotfix of T01 and of T03, verified, rolled back."""
    import time

    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    ws, root = large_ws, large_ws.root
    t01 = root / "tasks/T01"
    fixed = next(iter(sorted((t01 / "因子").rglob("mod*.py"))))
    fixed.write_text("def factor_0(x):\n    return x  # 修复: 不再乘以 0\n", encoding="utf-8")
    link_before = os.readlink(t01 / "latest_positions.json")
    state_before = (t01 / "state/positions.json").read_bytes()
    others = {p: (root / p).read_bytes() for p in ("tasks/T02/config.yaml", "tasks/T98/main.py")}
    started = time.perf_counter()
    proc = clawback(ws, "snapshot", "--task", "T01", "--hotfix", "-m", "因子 0 修复", "--json")
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    hot = json.loads(proc.stdout)["result"]["version"]
    assert hot == f"1.1.0-hotfix-{today()}"
    snap = parse_tag_message(ws.git.tag_message(f"T01-v{hot}")).snapshot
    assert snap.hotfix_of == "1.1.0" and len(snap.files) > 5000
    modes = {f.path: f.mode for f in snap.files}
    assert modes["tasks/T01/latest_positions.json"] == "120000"       # the link, as a link
    assert verify_snapshot(ws, "T01", hot).ok
    print(f"hotfix snapshot of T01 (large workspace, {len(snap.files)} files): {took:.2f} s")
    # a hotfix of T03 (python: none, its token a ${} reference); no secret in its manifest
    (root / "tasks/T03/main.py").write_text('print("北向资金 修复")\n', encoding="utf-8")
    proc = clawback(ws, "snapshot", "--task", "T03", "--hotfix")
    assert proc.returncode == 0, proc.stderr
    assert "8700" not in git(ws, "tag", "-l", "--format=%(contents)", "T03-v*")
    # the deleted tasks are refused, changing nothing
    before = world(ws)
    for task in ("T98", "T99"):
        proc = clawback(ws, "snapshot", "--task", task, "--hotfix")
        assert proc.returncode == 2 and "deleted" in proc.stderr, proc.stderr
    assert world(ws) == before
    # back to the base: the fix goes, the link and the state stay as they were
    back = run_rollback(str(root), "T01", "1.1.0")
    assert back.tag == f"T01-v1.1.0-rollback-from-v{hot}-1"
    assert "修复" not in fixed.read_text(encoding="utf-8")
    assert os.readlink(t01 / "latest_positions.json") == link_before
    assert (t01 / "state/positions.json").read_bytes() == state_before
    assert {p: (root / p).read_bytes() for p in others} == others


def test_a_hotfix_that_fails_after_its_tag_is_undone(released: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal's undo reads the hotfix tag's name like any version tag's (undo_guard)."""
    from tasks_lib.core.errors import OperationFailed
    from tests.conftest import failing_after

    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 7\n")
    before = world(ws)
    monkeypatch.setattr(fs, "tag_snapshot", failing_after(fs.tag_snapshot, "the tag"))
    with pytest.raises(OperationFailed, match="everything was put back"):
        fs.run_snapshot(str(root), "T01", hotfix=True)
    assert world(ws) == before
    assert "hotfix" not in git(ws, "tag", "-l")


@pytest.mark.parametrize(("text", "want"), [
    ("version: 1.2.0\nx: 1\n", "version: 1.2.0-hotfix-20260224-2\nx: 1\n"),
    ('version: "1.2.0"  # c\nx: &a 1\ny: *a\n', 'version: "1.2.0-hotfix-20260224-2"  # c\nx: &a 1\ny: *a\n'),
    ("# 涨停\nversion: '1.2.0'\n", "# 涨停\nversion: '1.2.0-hotfix-20260224-2'\n"),
])
def test_config_version_line_takes_a_hotfix_id_in_place(text: str, want: str) -> None:
    from tasks_lib.formats import config

    out = config.set_version(text, "1.2.0-hotfix-20260224-2")
    assert out == want and config.read_version(out) == "1.2.0-hotfix-20260224-2"


def test_hotfix_through_the_prefect_snapshot_flow(prefect_server: str, released: Workspace) -> None:
    from flows.prefect_flows import snapshot_flow

    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 8\n")
    result = snapshot_flow(str(root), "T01", hotfix=True, base="1.2.0", message="via prefect")
    assert (result.version, result.hotfix_of) == (f"1.2.0-hotfix-{today()}", "1.2.0")
    assert verify_snapshot(ws, "T01", result.version).ok


def test_diff_between_a_hotfix_and_its_base(released: Workspace) -> None:
    ws, root = released, released.root
    run_rollback(str(root), "T01", "1.2.0")
    (root / "tasks/T01/signals.py").write_text("def score():\n    return 6  # 修复\n")
    hot = fs.run_snapshot(str(root), "T01", hotfix=True).version
    before = world(ws)
    proc = clawback(ws, "diff", "--task", "T01", "--v1", "1.2.0", "--v2", hot, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)["result"]
    text = json.dumps(doc, ensure_ascii=False)
    assert "tasks/T01/signals.py" in text and "修复" in text and hot in text
    assert world(ws) == before
