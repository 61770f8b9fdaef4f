"""Writes never leave the task's directory: restore, backup, undo and the
version bump never follow a symlink in a parent path component, whatever it points at (another
task, outside the workspace, a chain of links); a directory replaced by a symlink can be
snapshotted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import flows.rollback as fr
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry
from tasks_lib.rollback import verify_live
from tests.conftest import failing_after, git


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")  # the sample config references it


def files_under(folder: Path) -> dict[str, bytes]:
    """Every entry below ``folder`` (links as their target), without following links."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(folder))
            if full.is_symlink():
                out[rel] = b"-> " + os.fsencode(os.readlink(full))
            elif full.is_file():
                out[rel] = full.read_bytes()
    return out


@pytest.fixture
def lib_dir_version(ws: Workspace) -> Workspace:
    """T01 1.2.0 has a real directory lib/ with two modules."""
    run_init(str(ws.root))
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"] = {"python": "none"}
    reg.set_entry("T01", entry)
    reg.save()
    (ws.root / "tasks/T01/main.py").write_text("X = 1\n")   # python: none (PATH python3)
    (ws.root / "tasks/T01/requirements.txt").write_text("")
    lib = ws.root / "tasks/T01/lib"
    lib.mkdir()
    (lib / "a.py").write_text("A = 1\n")
    (lib / "b.py").write_text("B = 2\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                     # 1.2.0
    return ws


def replace_lib_by_link(ws: Workspace, target: str) -> None:
    lib = ws.root / "tasks/T01/lib"
    for f in lib.iterdir():
        f.unlink()
    lib.rmdir()
    os.symlink(target, lib)


@pytest.mark.parametrize("kind", ["another task", "outside", "chain"])
def test_rollback_never_writes_through_a_versioned_link(lib_dir_version: Workspace,
                                                        tmp_path: Path, kind: str) -> None:
    ws = lib_dir_version
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the workspace's\n")
    t01 = ws.root / "tasks/T01"
    if kind == "another task":
        replace_lib_by_link(ws, "../T02")
    elif kind == "outside":
        replace_lib_by_link(ws, str(outside))
    else:  # lib -> hop -> ../T02
        replace_lib_by_link(ws, "hop")
        os.symlink("../T02", t01 / "hop")
    run_snapshot(str(ws.root), "T01", bump="minor")       # 1.3.0: lib is a link (and hop)
    assert git(ws, "ls-files", "-s", "--", "tasks/T01/lib").startswith("120000")
    t02_before, outside_before = files_under(ws.root / "tasks/T02"), files_under(outside)

    fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert files_under(ws.root / "tasks/T02") == t02_before
    assert files_under(outside) == outside_before
    assert not (t01 / "lib").is_symlink() and (t01 / "lib/a.py").read_text() == "A = 1\n"
    assert not (t01 / "hop").exists()
    assert all(lv.ok for lv in verify_live(ws, "T01", "1.2.0")[:2])
    fr.run_rollback(str(ws.root), "T01", "1.3.0")          # and forward again: the link is back
    assert (t01 / "lib").is_symlink()
    assert files_under(ws.root / "tasks/T02") == t02_before and files_under(outside) == outside_before


@pytest.mark.parametrize("step_name", ["restore_files", "verify", "commit_and_tag"])
def test_an_undo_puts_the_link_back_and_writes_nothing_through_it(
        lib_dir_version: Workspace, monkeypatch: pytest.MonkeyPatch, step_name: str) -> None:
    ws = lib_dir_version
    replace_lib_by_link(ws, "../T02")
    run_snapshot(str(ws.root), "T01", bump="minor")
    t02_before = files_under(ws.root / "tasks/T02")
    monkeypatch.setattr(fr, step_name, failing_after(getattr(fr, step_name), step_name))
    with pytest.raises(Exception, match="everything was put back"):
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert os.readlink(ws.root / "tasks/T01/lib") == "../T02"
    assert files_under(ws.root / "tasks/T02") == t02_before


def test_an_unversioned_link_in_the_way_is_refused_and_undone(lib_dir_version: Workspace) -> None:
    """An ignored (never versioned) link where the target has a directory: the rollback stops,
    puts everything back and writes nothing through the link."""
    ws = lib_dir_version
    t01 = ws.root / "tasks/T01"
    for f in (t01 / "lib").iterdir():
        f.unlink()
    (t01 / "lib").rmdir()
    run_snapshot(str(ws.root), "T01", bump="minor")       # 1.3.0 without lib/
    (ws.root / ".gitignore").write_text((ws.root / ".gitignore").read_text() + "tasks/T01/lib\n")
    os.symlink("../T02", t01 / "lib")
    t02_before = files_under(ws.root / "tasks/T02")
    with pytest.raises(Conflict, match="symlink") as err:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert "everything was put back" in err.value.message
    assert files_under(ws.root / "tasks/T02") == t02_before
    assert os.readlink(t01 / "lib") == "../T02"
    assert ws.task("T01").version == "1.3.0"


def test_a_directory_replaced_by_a_link_can_be_snapshotted(lib_dir_version: Workspace) -> None:
    ws = lib_dir_version
    replace_lib_by_link(ws, "../T02")
    r = run_snapshot(str(ws.root), "T01", bump="minor")
    listed = git(ws, "ls-tree", "-r", "HEAD", "--", "tasks/T01/lib", "tasks/T02").splitlines()
    assert [ln.split()[0] for ln in listed if ln.endswith("tasks/T01/lib")] == ["120000"]
    assert not any("tasks/T01/lib/" in ln for ln in listed)
    assert r.version == "1.3.0"
    assert git(ws, "status", "--porcelain", "--", "tasks/T02") == ""


def test_the_version_bump_never_writes_through_a_symlinked_config(ws: Workspace) -> None:
    run_init(str(ws.root))
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.unlink()
    os.symlink("../T02/config.yaml", cfg)
    t02 = (ws.root / "tasks/T02/config.yaml").read_bytes()
    with pytest.raises(Exception, match="symlink") as err:
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert getattr(err.value, "exit_code", None) == 2
    assert (ws.root / "tasks/T02/config.yaml").read_bytes() == t02


# -- the helper itself ---------------------------------------------------------------------
@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "ws"
    (r / "tasks/T01").mkdir(parents=True)
    (r / "tasks/T02").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return r


@pytest.mark.parametrize("link", ["../T02", "{outside}", "hop1"])
def test_safefs_never_follows_a_parent_link(root: Path, link: str) -> None:
    from tasks_lib.core import safefs

    outside = root.parent / "outside"
    t01 = root / "tasks/T01"
    if link == "hop1":
        os.symlink("hop2", t01 / "hop1")
        os.symlink("../T02", t01 / "hop2")
    os.symlink(link.format(outside=outside), t01 / "lib")
    for write in (lambda: safefs.write_file(root, "tasks/T01/lib/x.py", b"x"),
                  lambda: safefs.write_link(root, "tasks/T01/lib/y", b"z"),
                  lambda: safefs.write_file(root, "tasks/T01/lib/deep/er/x.py", b"x")):
        with pytest.raises(safefs.Unsafe, match="tasks/T01/lib is a symlink"):
            write()
    assert safefs.entry(root, "tasks/T01/lib/x.py").kind == "behind-link"
    assert safefs.read_bytes(root, "tasks/T01/lib/x.py") is None
    assert not safefs.remove(root, "tasks/T01/lib/x.py")
    assert list((root / "tasks/T02").iterdir()) == [] and list(outside.iterdir()) == []
    # the link itself is a file of the task: replaced as a link, never written through
    safefs.write_file(root, "tasks/T01/lib", b"now a file\n")
    assert not (t01 / "lib").is_symlink() and (t01 / "lib").read_bytes() == b"now a file\n"


def test_safefs_refuses_a_file_as_a_parent_and_a_directory_as_a_file(root: Path) -> None:
    from tasks_lib.core import safefs

    (root / "tasks/T01/plain").write_text("x")
    with pytest.raises(safefs.Unsafe, match="not a directory"):
        safefs.write_file(root, "tasks/T01/plain/x.py", b"x")
    (root / "tasks/T01/dir").mkdir()
    with pytest.raises(Conflict, match="is a directory"):
        safefs.write_file(root, "tasks/T01/dir", b"x")
    assert safefs.entry(root, "tasks/T01/dir").kind == "dir"


def test_safefs_reads_special_files_without_blocking(root: Path) -> None:
    from tasks_lib.core import safefs

    os.mkfifo(root / "tasks/T01/fifo")
    assert safefs.entry(root, "tasks/T01/fifo").kind == "other"
    assert safefs.read_bytes(root, "tasks/T01/fifo") is None


def test_safefs_keeps_modes_and_odd_names(root: Path) -> None:
    from tasks_lib.core import safefs

    name = "tasks/T01/-rf \udcff\n.py"
    safefs.write_file(root, name, b"print(1)\n", executable=True)
    full = root / name
    assert os.stat(full).st_mode & 0o777 == 0o755 and full.read_bytes() == b"print(1)\n"
    safefs.write_file(root, name, b"print(2)\n", executable=None)    # keeps the mode
    assert os.stat(full).st_mode & 0o777 == 0o755
    assert subprocess.run(["ls", "-b", str(full.parent)], capture_output=True).returncode == 0
