"""The git layer on real repositories: committing only some paths keeps everything else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks_lib.core.errors import Conflict
from tasks_lib.gitops.repo import Git


def sh(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Git:
    root = tmp_path / "r"
    root.mkdir()
    sh(root, "init", "-q", "-b", "main")
    sh(root, "config", "user.name", "T")
    sh(root, "config", "user.email", "t@example.invalid")
    for rel, text in {"a/one.txt": "1\n", "a/two.txt": "2\n", "b/other.txt": "o\n", "top.json": "{}\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "init")
    return Git(root)


def test_commit_paths_keeps_other_staged_and_unstaged_work(repo: Git, tmp_path: Path) -> None:
    root = repo.root
    (root / "a/one.txt").write_text("1 changed\n")
    (root / "a/new.txt").write_text("new\n")
    (root / "a/two.txt").unlink()
    (root / "b/other.txt").write_text("staged other\n")
    sh(root, "add", "b/other.txt")
    (root / "b/other.txt").write_text("staged other, then edited more\n")
    (root / "b/untracked.txt").write_text("u\n")
    before_head = repo.head()
    paths = [*repo.ls_files("a"), "top.json"]
    new, old = repo.commit_paths(paths, "a: change", tmp_path / "scratch")
    assert old == before_head and repo.head() == new
    changed = sh(root, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(x for x in changed if x) == ["A\ta/new.txt", "D\ta/two.txt", "M\ta/one.txt"]
    status = sh(root, "status", "--porcelain")
    assert "MM b/other.txt" in status            # still staged and still edited on top
    assert "?? b/untracked.txt" in status
    assert " a/" not in status and "a/" not in status  # the committed paths are clean
    assert (root / "b/other.txt").read_text() == "staged other, then edited more\n"
    assert sh(root, "show", ":b/other.txt") == "staged other\n"  # the index kept its stage


def test_commit_paths_refuses_when_head_moved(repo: Git, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo.root / "a/one.txt").write_text("x\n")
    real_run = Git.run

    def racing_run(self: Git, *args: str, **kw: object):  # another commit lands mid-way
        if args and args[0] == "update-ref" and "HEAD" in args:
            sh(self.root, "commit", "-q", "--allow-empty", "-m", "concurrent")
        return real_run(self, *args, **kw)

    monkeypatch.setattr(Git, "run", racing_run)
    with pytest.raises(Conflict):
        repo.commit_paths(["a/one.txt"], "a", tmp_path / "s")
    monkeypatch.undo()
    assert sh(repo.root, "log", "-1", "--format=%s") == "concurrent\n"


def test_commit_paths_on_unborn_repo(tmp_path: Path) -> None:
    root = tmp_path / "u"
    root.mkdir()
    sh(root, "init", "-q", "-b", "main")
    (root / "x.txt").write_text("x")
    (root / "y.txt").write_text("y")
    sh(root, "add", "y.txt")
    git = Git(root)
    new, old = git.commit_paths(["x.txt"], "first", tmp_path / "s")
    assert old is None and git.head() == new
    assert sh(root, "ls-tree", "--name-only", "HEAD") == "x.txt\n"
    assert "A  y.txt" in sh(root, "status", "--porcelain")
    git.uncommit(new, old, ["x.txt"])
    assert git.head() is None


def test_tags_are_immutable(repo: Git) -> None:
    head = repo.head()
    assert head
    obj = repo.create_tag("T01-v1.0.0", head, "T01 version 1.0.0\n")
    with pytest.raises(Conflict):
        repo.create_tag("T01-v1.0.0", head, "again\n")
    info = repo.tag_info("T01-v1.0.0")
    assert info and info.annotated and info.commit == head and info.object == obj
    repo.delete_tag("T01-v1.0.0", head)  # not the tag object we made: kept
    assert repo.tag_info("T01-v1.0.0") is not None
    repo.delete_tag("T01-v1.0.0", obj)
    assert repo.tag_info("T01-v1.0.0") is None


def test_read_blobs_and_ls_tree(repo: Git) -> None:
    tree = repo.ls_tree("HEAD", "a")
    assert set(tree) == {"a/one.txt", "a/two.txt"}
    blobs = dict(repo.read_blobs([oid for _, oid in tree.values()]))
    assert sorted(blobs.values()) == [b"1\n", b"2\n"]


def test_detached_head_refused(repo: Git, tmp_path: Path) -> None:
    sh(repo.root, "checkout", "-q", "--detach")
    with pytest.raises(Conflict, match="detached"):
        repo.commit_paths(["a/one.txt"], "x", tmp_path / "s")
