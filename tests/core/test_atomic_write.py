"""The one atomic write (safefs.replace_file / write_file / replace_link): the file and its
directory are fsynced, a link standing at the path is replaced (never written through), a
failure leaves neither a temp file nor a half-written target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tasks_lib.core import safefs
from tasks_lib.deps import envs
from tasks_lib.formats.registry import Registry


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each fsync was called on: ``file`` or ``dir`` (the real fsync still runs)."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_replace_file_fsyncs_the_file_then_its_directory(tmp_path: Path, synced: list[str]):
    target = tmp_path / "state" / "a.json"
    safefs.replace_file(target, b"one\n", 0o600)
    assert target.read_bytes() == b"one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert synced == ["file", "dir"]
    assert os.listdir(target.parent) == ["a.json"]


def test_write_file_in_a_task_tree_fsyncs_both_too(tmp_path: Path, synced: list[str]):
    safefs.write_file(tmp_path, "tasks/T01/main.py", b"print(1)\n", executable=True)
    assert (tmp_path / "tasks/T01/main.py").read_bytes() == b"print(1)\n"
    assert synced == ["file", "dir"]


def test_replace_file_replaces_a_link_never_writes_through_it(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "out"
    link.symlink_to(victim)
    safefs.replace_file(link, b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert victim.read_bytes() == b"keep"


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def broken(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        safefs.replace_file(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_replace_link_switches_a_link_atomically(tmp_path: Path, synced: list[str]):
    link = tmp_path / "current"
    link.symlink_to("a")
    safefs.replace_link(link, "b")
    assert os.readlink(link) == "b"
    assert synced == ["dir"]
    assert sorted(os.listdir(tmp_path)) == ["current"]


def test_switch_current_goes_through_it(tmp_path: Path, synced: list[str]):
    target = envs.env_root(tmp_path, "T01") / "envA"
    target.mkdir(parents=True)
    envs.switch_current(tmp_path, "T01", target)
    assert os.readlink(envs.env_root(tmp_path, "T01") / envs.CURRENT) == "envA"
    assert synced == ["dir"]


def test_registry_save_goes_through_it_and_keeps_the_mode(tmp_path: Path, synced: list[str]):
    path = tmp_path / "task_registry.json"
    path.write_text('{"tasks": [{"id": "T01", "version": "1.0.0", "location": "tasks/T01"}]}\n')
    path.chmod(0o640)
    reg = Registry.load(path)
    reg.set_entry("T01", {**reg.entry("T01"), "version": "1.0.1"})
    reg.save()
    assert '"1.0.1"' in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert synced == ["file", "dir"]
    assert os.listdir(tmp_path) == ["task_registry.json"]
