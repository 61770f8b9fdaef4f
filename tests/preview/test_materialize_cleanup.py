"""``preview --materialize DIR`` never writes through a component of DIR's path swapped for a
link after it was checked, and ``preview --cleanup`` removes exactly the files a preview wrote
(still as written), never what the operator added or edited, nor a DIR that existed before."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.preview import resolve, trees
from tests.conftest import tree


@pytest.fixture
def adopted(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """T01 1.1.0 (from init) and 1.2.0, which adds a nested package and an executable."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value-xyz")
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    run_init(str(ws.root))
    t01 = ws.root / "tasks/T01"
    (t01 / "lib/deep").mkdir(parents=True)
    (t01 / "lib/util.py").write_text("U = 1\n")
    (t01 / "lib/deep/more.py").write_text("M = 2\n")
    (t01 / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(t01 / "run.sh", 0o755)
    os.symlink("lib/util.py", t01 / "util_link")
    run_snapshot(str(ws.root), "T01", bump="minor", message="nested")
    return ws


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)["result"]


def materialize(ws: Workspace, dest: Path | None = None) -> Path:
    extra = [str(dest)] if dest is not None else []
    return Path(result(cli(ws, "preview", "--task", "T01", "--version", "1.2.0", "--materialize",
                           *extra, "--json"))["path"])


# -- the race: a parent becomes a link between the check and the write ----------------------
@pytest.mark.parametrize("swap", ["parent", "grandparent", "dir itself", "fills dir"])
def test_a_path_swapped_after_the_check_is_never_written_through(
        adopted: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str) -> None:
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    dest = out / "a" / "dest"
    if swap in ("dir itself", "fills dir"):
        dest.mkdir()                   # the operator's empty DIR
    real_record = trees.record

    def swapping(*args: Any) -> None:  # runs between _destination's check and the mkdir
        real_record(*args)
        if swap == "parent":
            shutil.rmtree(out / "a")
            os.symlink(victim, out / "a")
        elif swap == "grandparent":
            shutil.rmtree(out)
            os.symlink(victim, out)
            (victim / "a").mkdir()
        elif swap == "dir itself":
            dest.rmdir()
            os.symlink(victim, dest)
        else:
            (dest / "mine.txt").write_text("the operator's")

    monkeypatch.setattr(trees, "record", swapping)
    res = resolve.resolve(adopted, "T01", "1.2.0")
    with pytest.raises(Conflict, match="changed while the preview was being made"):
        trees.materialize(adopted, res, str(dest))
    assert [p.name for p in victim.rglob("*")] == ([] if swap != "grandparent" else ["a"])
    if swap == "fills dir":
        assert sorted(p.name for p in dest.iterdir()) == ["mine.txt"]
    index = json.loads((adopted.state_dir / "previews/index.json").read_text())
    assert index["previews"] == []     # the failed preview is no longer listed
    assert list((adopted.state_dir / "previews/written").iterdir()) == []


def test_a_linked_state_dir_still_materialises_and_cleans_up(adopted: Workspace,
                                                            tmp_path: Path) -> None:
    """.clawback/ may be a link to another disk: the default DIR is its real path, so the
    descriptor walk from / that creates and removes the preview never meets the link."""
    elsewhere = tmp_path / "other-disk"
    shutil.move(str(adopted.state_dir), elsewhere)
    os.symlink(elsewhere, adopted.state_dir)
    made = materialize(adopted)
    assert made.is_relative_to(elsewhere) and (made / "lib/deep/more.py").read_text() == "M = 2\n"
    assert result(cli(adopted, "preview", "--cleanup", "--json"))["removed"] == [str(made)]
    assert not made.exists()


# -- cleanup: only what the preview wrote ------------------------------------------------------
def test_cleanup_keeps_what_the_operator_added_or_changed(adopted: Workspace,
                                                         tmp_path: Path) -> None:
    existing = tmp_path / "existing"       # the operator's empty DIR
    existing.mkdir()
    materialize(adopted, existing)
    (existing / "my_notes.md").write_text("my analysis\n")
    (existing / "work").mkdir()
    (existing / "work/patch.py").write_text("fix = 1\n")
    (existing / "lib/mine.py").write_text("mine\n")          # into a directory the preview made
    (existing / "config.yaml").write_text("edited\n")         # a written file, edited
    secret = tmp_path / "secret.txt"
    secret.write_text("not the preview's")
    (existing / "run.sh").unlink()
    os.symlink(secret, existing / "run.sh")                  # a written file replaced by a link
    os.chmod(existing / "main.py", 0o755)                    # a written file's mode changed

    made = materialize(adopted, tmp_path / "made")           # a DIR clawback created
    (made / "experiment.py").write_text("print('mine')\n")
    untouched = materialize(adopted, tmp_path / "untouched")
    under_state = materialize(adopted)
    keep = {p: tree(p) for p in (existing, made)}

    dry = result(cli(adopted, "preview", "--cleanup", "--dry-run", "--json"))
    assert {p: tree(p) for p in (existing, made)} == keep and untouched.is_dir()
    r = result(cli(adopted, "preview", "--cleanup", "--json"))
    assert dry["left"] == r["left"] and sorted(dry["removed"]) == sorted(r["removed"])
    assert sorted(r["removed"]) == sorted(map(str, (existing, made, untouched, under_state)))
    left = dict(map(tuple, r["left"]))
    assert left == {
        f"{existing}/my_notes.md": "not written by the preview",
        f"{existing}/work/": "not written by the preview",
        f"{existing}/lib/mine.py": "not written by the preview",
        f"{existing}/config.yaml": "changed since the preview wrote it",
        f"{existing}/run.sh": "changed since the preview wrote it",
        f"{existing}/main.py": "changed since the preview wrote it",
        str(existing): "existed before the preview: kept",
        f"{made}/experiment.py": "not written by the preview",
        str(made): "kept: it holds what the preview did not write (listed)",
    }
    assert sorted(str(p.relative_to(existing)) for p in existing.rglob("*")) == [
        "config.yaml", "lib", "lib/mine.py", "main.py", "my_notes.md", "run.sh", "work",
        "work/patch.py"]
    assert (existing / "config.yaml").read_text() == "edited\n" and secret.exists()
    assert sorted(p.name for p in made.iterdir()) == ["experiment.py"]
    assert not untouched.exists() and not under_state.exists()
    text = cli(adopted, "preview", "--cleanup")
    assert text.returncode == 0 and "removed 0 preview(s)" in text.stdout  # all dropped: idempotent
    assert (existing / "my_notes.md").exists() and (made / "experiment.py").exists()


def test_cleanup_text_says_what_it_left(adopted: Workspace, tmp_path: Path) -> None:
    made = materialize(adopted, tmp_path / "p")
    (made / "experiment.py").write_text("x\n")
    proc = cli(adopted, "preview", "--cleanup")
    assert proc.returncode == 0, proc.stderr
    assert f"removed the preview's files from {made}" in proc.stdout
    assert f"left alone {made}/experiment.py: not written by the preview" in proc.stdout


def test_a_preview_without_a_record_is_left_alone(adopted: Workspace, tmp_path: Path) -> None:
    """A preview an older clawback made (no record of its files): nothing in it is removed."""
    made = materialize(adopted, tmp_path / "p")
    for record in (adopted.state_dir / "previews/written").iterdir():
        record.unlink()
    before = tree(made)
    r = result(cli(adopted, "preview", "--cleanup", "--json"))
    assert r["removed"] == [] and "no record of the files" in dict(map(tuple, r["left"]))[str(made)]
    assert tree(made) == before
