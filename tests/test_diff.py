"""``clawback diff``: the four sections between two versions or a version and the live tree, every
shown line masked, bad input refused with exit 2, the workspace left byte for byte as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawback import diffview
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput, NotFound, VerificationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.versiondiff.compare import diff_task
from tests.conftest import git, tree

TOKEN = "8700aa11bb22cc33dd44ee55"             # a plaintext tushare token
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # an issuer's token shape


def clawback(ws: Workspace, *args: str, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none", **(env or {})}
    return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          env=full, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def two(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """T01 at 1.1.0 (adopted), then 1.2.0 with every kind of change."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "main.py").write_text((t01 / "main.py").read_text().replace("time.sleep(5)", "time.sleep(7)")
                                 + "# 涨停 strategy: 北向资金\n", encoding="utf-8")
    (t01 / "signals.py").write_text("def score():\n    return 1\n")
    (t01 / "blob.bin").write_bytes(b"\0\1\2binary")
    (t01 / "link").symlink_to("main.py")
    (t01 / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(t01 / "run.sh", 0o755)
    (t01 / os.fsdecode(b"caf\xe9.py")).write_text("X = 1\n")
    (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\n")
    cfg = t01 / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("threshold: 0.05", "threshold: 0.07")
                   + "universe_list: [a, b, c]\n", encoding="utf-8")
    run_snapshot(str(ws.root), "T01", bump="minor", message="1.2.0")
    return ws


def test_two_versions_every_section(two: Workspace) -> None:
    d = diff_task(two, "T01", "1.1.0", "1.2.0")
    by = {f.path: f for f in d.files}
    main = by["tasks/T01/main.py"]
    assert main.status == "changed" and (main.added, main.removed) == (2, 1)
    assert "+        time.sleep(7)" in main.lines and "+# 涨停 strategy: 北向资金" in main.lines
    assert by["tasks/T01/signals.py"].status == "added" and by["tasks/T01/signals.py"].added == 2
    assert by["tasks/T01/blob.bin"].binary and not by["tasks/T01/blob.bin"].lines
    assert by["tasks/T01/link"].new_target == "main.py"
    assert by["tasks/T01/run.sh"].new_mode == "100755"
    assert os.fsdecode(b"tasks/T01/caf\xe9.py") in by
    assert not any("state/" in p for p in by)  # runtime state is never part of a diff
    config = {c.path: c for c in d.config}
    assert (config["strategy.threshold"].old, config["strategy.threshold"].new) == ("0.05", "0.07")
    assert config["defaults.threshold"].change == "changed"  # the anchor, resolved
    assert config["universe_list[2]"].new == '"c"' and config["version"].new == '"1.2.0"'
    deps = d.dependencies
    assert deps.exact and [(p.name, p.change, p.old, p.new) for p in deps.packages] == [
        ("clawdemo-signals", "upgraded", "1.0.0", "1.1.0")]
    assert any(c.path == "version" for c in d.registry)
    assert not any(c.path.startswith(("snapshots", "rollback_history")) for c in d.registry)
    # and backwards: removed, downgraded
    back = diff_task(two, "T01", "1.2.0", "1.1.0")
    assert {f.path: f.status for f in back.files}["tasks/T01/signals.py"] == "removed"
    assert back.dependencies.packages[0].change == "downgraded"


def test_working_defaults_and_secrets_masked(two: Workspace) -> None:
    t01 = two.root / "tasks/T01"
    (t01 / "fetch.py").write_text(f'import tushare as ts\nTUSHARE_TOKEN = "{TOKEN}"\n'
                                  f'pro = ts.pro_api("{TOKEN}")\nOTHER = 1\n')
    cfg = t01 / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + f"github:\n  api_key: {TOKEN}x\n"
                   f"  note: {GHP}\n", encoding="utf-8")
    (t01 / "signals.py").write_text("def score():\n    return 2\n")
    d = diff_task(two, "T01")  # current version (1.2.0) -> working
    assert (d.old, d.new, d.new_tag) == ("1.2.0", "working", None)
    text = json.dumps(d.as_dict()) + diffview.text(d)
    assert TOKEN not in text and GHP not in text
    fetch = next(f for f in d.files if f.path.endswith("fetch.py"))
    assert fetch.added == 4 and any("TUSHARE_TOKEN = ***" in line for line in fetch.lines)
    assert "+OTHER = 1" in fetch.lines
    keys = {c.path: c for c in d.config}
    assert keys["github.api_key"].new == '"***"' and "***" in keys["github.note"].new
    assert d.dependencies.exact and "the lock is 1.2.0's" in d.dependencies.note
    (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    later = diff_task(two, "T01").dependencies
    assert not later.exact and later.requirements_added == ("clawdemo-risk",)
    assert "after `clawback snapshot`" in later.note


def test_symlink_and_binary_in_working(two: Workspace) -> None:
    t01 = two.root / "tasks/T01"
    (t01 / "link").unlink()
    (t01 / "link").symlink_to("signals.py")
    (t01 / "blob.bin").write_bytes(b"\0\3other")
    (t01 / "state" / "new.json").write_text("{}")   # state: not shown
    by = {f.path: f for f in diff_task(two, "T01").files}
    assert (by["tasks/T01/link"].old_target, by["tasks/T01/link"].new_target) == ("main.py", "signals.py")
    assert by["tasks/T01/blob.bin"].binary and set(by) == {"tasks/T01/link", "tasks/T01/blob.bin"}


def test_a_link_out_of_the_workspace_is_its_target_never_what_it_points_at(two: Workspace,
                                                                           tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(f"token: {TOKEN}\n")
    (two.root / "tasks/T01/escape").symlink_to(outside)
    f = next(f for f in diff_task(two, "T01").files if f.path.endswith("escape"))
    assert f.new_target == str(outside) and not f.lines


def test_control_characters_are_escaped(two: Workspace) -> None:
    (two.root / "tasks/T01/evil.txt").write_text("hello \x1b[2J\x1b]0;pwned\x07 world\n")
    f = next(f for f in diff_task(two, "T01").files if f.path.endswith("evil.txt"))
    assert "\x1b" not in "".join(f.lines) and "\\x1b[2J" in f.lines[-1]


@pytest.mark.parametrize(("v1", "v2", "error", "words"), [
    ("../x", None, BadInput, "invalid version"),
    ("1.2.0;rm", None, BadInput, "invalid version"),
    ("1.1.0", "-rf", BadInput, "invalid version"),
    ("7.7.7", None, NotFound, "known versions of T01: 1.1.0, 1.2.0"),
    ("1.2.0", "1.2.0", BadInput, "nothing to compare"),
])
def test_bad_versions(two: Workspace, v1: str, v2: str | None, error: type, words: str) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(")):
        diff_task(two, "T01", v1, v2)


def test_deleted_task_has_no_live_tree(two: Workspace) -> None:
    with pytest.raises(BadInput, match="is deleted"):
        diff_task(two, "T99")


def test_a_tampered_manifest_is_refused(two: Workspace) -> None:
    git(two, "tag", "-f", "-a", "T01-v1.1.0", "-m", "T01 version 1.1.0\n\n"
        + two.git.tag_message("T01-v1.1.0").split("\n\n", 1)[1].replace('"1.1.0"', '"1.1.9"', 1),
        "T01-v1.1.0^{commit}")
    with pytest.raises(VerificationFailed, match="digest"):
        diff_task(two, "T01", "1.1.0", "1.2.0")


def test_task_whose_location_is_missing(two: Workspace) -> None:
    git(two, "rm", "-r", "-q", "--cached", "tasks/T01")
    os.rename(two.root / "tasks/T01", two.root / "moved")
    d = diff_task(two, "T01")
    assert d.files and {f.status for f in d.files} == {"removed"}


# -- the command ------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["--task", "../x"], ["--task", "-rf"], ["--task", "T01", "--v1", "1.2.0;rm"],
    ["--task", "T01", "--v2=-rf"], ["--task", "T01", "--v1", "../../etc"], ["--task", "T42"],
    ["--task", "T99"], ["--task", "T01", "--v1", "9.9.9"], ["--task", "T01", "--stat", "--v2", "x"],
])
def test_cli_bad_input_exit_2_nothing_changed(two: Workspace, args: list[str]) -> None:
    before = tree(two.root)
    proc = clawback(two, "diff", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert tree(two.root) == before


def test_cli_leaves_the_workspace_byte_identical_and_never_imports_prefect(two: Workspace) -> None:
    t01 = two.root / "tasks/T01"
    (t01 / "fetch.py").write_text(f'TUSHARE_TOKEN = "{TOKEN}"\n')
    (t01 / "main.py").write_text("print('edited')\n")
    os.utime(t01 / "signals.py")  # stat-dirty: git's check reads it, nothing may refresh the index
    git(two, "add", "--", "tasks/T01/main.py")
    before = tree(two.root)
    for extra in ([], ["--stat"], ["--json"], ["--v1", "1.1.0", "--v2", "1.2.0", "--json"]):
        proc = clawback(two, "diff", "--task", "T01", *extra)
        assert proc.returncode == 0, proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr
        assert "\x1b[" not in proc.stdout  # a pipe: no colour
    assert tree(two.root) == before
    code = ("import sys; from clawback.cli import main; "
            f"rc = main(['diff', '--task', 'T01', '--workspace', {str(two.root)!r}]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_cli_json_has_the_four_sections_and_stat_drops_lines(two: Workspace) -> None:
    doc = json.loads(clawback(two, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0",
                              "--json").stdout)
    result = doc["result"]
    assert doc["ok"] and {"code", "config", "dependencies", "registry"} <= set(result)
    assert result["code"]["summary"]["added"] >= 5
    assert "caf\\udce9.py" in json.dumps(result)  # a name's byte that is not UTF-8, escaped
    stat = json.loads(clawback(two, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0",
                               "--json", "--stat").stdout)["result"]
    assert all(not f["lines"] for f in stat["code"]["files"])
    text = clawback(two, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0").stdout
    assert '"tasks/T01/caf\\xe9.py"' in text and "clawdemo-signals 1.0.0 -> 1.1.0 (upgraded)" in text


def test_colour_only_on_a_terminal_without_no_color(two: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    d = diff_task(two, "T01", "1.1.0", "1.2.0")
    assert "\x1b[32m" in diffview.text(d, colour=True) and "\x1b[" not in diffview.text(d)

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert diffview.use_colour(Tty())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not diffview.use_colour(Tty())  # type: ignore[arg-type]


def test_large_workspace(large_ws: Workspace) -> None:
    t01 = large_ws.root / "tasks/T01"
    before_index = (large_ws.root / ".git/index").read_bytes()
    (t01 / "main.py").write_text("print('edited 北向')\n", encoding="utf-8")
    d = diff_task(large_ws, "T01")
    assert [f.path for f in d.files] == ["tasks/T01/main.py"]
    assert (large_ws.root / ".git/index").read_bytes() == before_index
    t03 = diff_task(large_ws, "T03")
    assert not t03.files


def test_task_directory_that_is_a_link_is_refused(two: Workspace, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    os.rename(two.root / "tasks/T02", real)
    (two.root / "tasks/T02").symlink_to(real)
    before, outside = tree(two.root), tree(real)
    proc = clawback(two, "diff", "--task", "T02")
    assert proc.returncode == 2 and "symlink" in proc.stderr, proc.stderr
    assert (tree(two.root), tree(real)) == (before, outside)


def test_mapping_form_registry(two: Workspace) -> None:
    path = two.root / "task_registry.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["tasks"] = {t.pop("id"): t for t in doc["tasks"]}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    d = diff_task(two, "T01", "1.1.0", "1.2.0")
    assert any(f.path == "tasks/T01/signals.py" for f in d.files)
    assert not diff_task(two, "T01").files  # the live tree is 1.2.0's
