"""The GitPython layer against git's own plumbing on real repositories: the same tags, trees and
blobs byte for byte (names git stores but UTF-8 does not, hostile tag messages), read from the
right repository when a hook's variables point elsewhere, in a constant number of processes that
all end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import git.cmd
import psutil
import pytest

from tasks_lib.gitops.repo import Git, TagInfo

IDENT = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid",
         "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def sh(root: Path, *args: str, input: bytes | None = None, **env: str) -> bytes:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, input=input,
                          env={**os.environ, **IDENT, **env}).stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "r"
    (root / "t" / "sub dir").mkdir(parents=True)
    sh(root, "init", "-q", "-b", "main")
    raw = os.fsencode(root / "t")
    for name, data in {b"caf\xc3\xa9.txt": b"utf8", b"bad\xff\xfename": b"latin",
                       b"new\nline": b"nl", b"sub dir/deep \\ back": b"deep"}.items():
        with open(raw + b"/" + name, "wb") as f:
            f.write(data)
    os.symlink("caf\u00e9.txt", root / "t" / "link")
    (root / "t" / "run.sh").write_bytes(b"#!/bin/sh\n")
    (root / "t" / "run.sh").chmod(0o755)
    (root / "other.txt").write_text("o")
    sh(root, "add", "-A")
    sh(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},t/gitlink")
    sh(root, "commit", "-q", "-m", "first\nsecond line\n\nbody")
    return root


def _ls_tree(root: Path, rev: str, prefix: str) -> dict[str, tuple[str, str]]:
    raw = sh(root, "ls-tree", "-r", "-z", "--full-tree", rev, "--", prefix)
    found = {}
    for rec in raw.split(b"\0"):
        if rec:
            meta, path = rec.split(b"\t", 1)
            mode, kind, oid = meta.decode().split(" ")
            if kind in ("blob", "commit"):
                found[path.decode("utf-8", "surrogateescape")] = (mode, oid)
    return found


def _for_each_ref(root: Path, pattern: str) -> list[TagInfo]:
    """What the layer returned when it was ``git for-each-ref``."""
    fmt = "%00".join(["%(refname:strip=2)", "%(objectname)", "%(objecttype)", "%(*objectname)",
                      "%(taggername) %(taggeremail)", "%(taggerdate:iso-strict)",
                      "%(contents:subject)"]) + "%00%00"
    out = []
    for rec in sh(root, "for-each-ref", f"--format={fmt}", pattern).split(b"\0\0\n"):
        if rec.strip(b"\n"):
            f = rec.strip(b"\n").decode("utf-8", "surrogateescape").split("\0")
            annotated = f[2] == "tag"
            out.append(TagInfo(name=f[0], object=f[1], annotated=annotated,
                               commit=(f[3] or None) if annotated else f[1],
                               tagger=f[4].strip(), date=f[5], subject=f[6]))
    return out


def test_ls_tree_and_blobs_match_git_byte_for_byte(root: Path) -> None:
    g = Git(root)
    want = _ls_tree(root, "HEAD", "t")
    assert g.ls_tree("HEAD", "t") == want
    assert list(g.ls_tree("HEAD", "t")) == list(want)  # and in git's order
    assert want["t/bad\udcff\udcfename"][0] == "100644"
    assert want["t/link"][0] == "120000" and want["t/run.sh"][0] == "100755"
    assert want["t/gitlink"] == ("160000", "1" * 40)
    assert g.ls_tree("HEAD", "nothing/here") == {}
    assert g.ls_tree("HEAD", "other.txt") == _ls_tree(root, "HEAD", "other.txt")
    blobs = {p: oid for p, (mode, oid) in want.items() if mode != "160000"}
    got = dict(g.read_blobs(blobs.values()))
    for path, oid in blobs.items():
        assert got[oid] == sh(root, "cat-file", "blob", oid), path
    assert got[blobs["t/link"]] == "caf\u00e9.txt".encode()
    assert g.show_file("HEAD", "t/bad\udcff\udcfename") == b"latin"
    assert g.show_file("HEAD", "t/sub dir") is None and g.show_file("HEAD", "t/none") is None
    assert g.show_file("HEAD", "t/gitlink") is None


HOSTILE_MESSAGES = [
    b"one line\n", b"two\nlines\n\nbody\n", b"\n\nafter blank\r\nline2\n\n\nbody\n",
    b"latin \xff\xfe subject\n\nbody \xff\n", b"no newline at all",
    b"signed\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n",
]


def test_tags_match_for_each_ref(root: Path) -> None:
    g = Git(root)
    head = g.head()
    assert head is not None
    for i, message in enumerate(HOSTILE_MESSAGES):
        sh(root, "tag", "-a", "--cleanup=verbatim", "-F", "-", f"T01-v1.{i}.0", head, input=message,
           GIT_COMMITTER_DATE=f"2020-0{i + 1}-01T10:00:00+0{i}30")
    sh(root, "tag", "T01-v9.0.0")  # lightweight
    sh(root, "tag", "-a", "-m", "tag of a tag", "T01-nested", "T01-v1.0.0")
    sh(root, "tag", "-a", "-m", "a slash", "T01-vx/y", head)
    sh(root, "tag", "-a", "-m", "other task", "T02-v1.0.0", head)
    sh(root, "pack-refs", "--all")
    sh(root, "tag", "-a", "-m", "loose after packing", "T01-v8.0.0", head)
    for pattern in ("refs/tags", "refs/tags/T01-v*", "refs/tags/T01-v1.2.0", "refs/tags/T01-vx"):
        assert g.tags(pattern) == _for_each_ref(root, pattern), pattern
    assert g.tag_info("T01-v1.3.0") == _for_each_ref(root, "refs/tags/T01-v1.3.0")[0]
    assert g.tag_info("T01-v1") is None and g.tag_info("T01-vx") is None
    raw = sh(root, "cat-file", "tag", "T01-v1.3.0")
    assert g.tag_message("T01-v1.3.0") == raw.partition(b"\n\n")[2].decode("utf-8", "surrogateescape")


def test_a_hooks_variables_do_not_redirect_reads(root: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    sh(decoy, "init", "-q", "-b", "main")
    (decoy / "other.txt").write_text("decoy")
    sh(decoy, "add", "-A")
    sh(decoy, "commit", "-q", "-m", "decoy")
    want = _ls_tree(root, "HEAD", "t")
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(decoy / ".git" / "objects"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(decoy / ".git" / "index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    g = Git(root)
    assert g.ls_tree("HEAD", "t") == want
    assert g.show_file("HEAD", "other.txt") == b"o"
    oid = want["t/caf\u00e9.txt"][1]
    assert dict(g.read_blobs([oid])) == {oid: b"utf8"}
    assert g.ls_files("other.txt") == ["other.txt"]
    assert "t/link" in g.index_entries("t")
    assert g.git_dir() == (root / ".git").resolve()


def test_reads_take_a_constant_number_of_processes_and_end_them(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = Git(root)
    for i in range(60):
        (root / "t" / f"f{i}").write_text(str(i))
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "more")
    started: list[list[str]] = []
    real = git.cmd.safer_popen

    def counting(cmd, *a, **kw):  # type: ignore[no-untyped-def]
        started.append(list(cmd))
        return real(cmd, *a, **kw)

    monkeypatch.setattr(git.cmd, "safer_popen", counting)
    fds = len(os.listdir("/proc/self/fd"))
    tree = g.ls_tree("HEAD", "t")
    blobs = dict(g.read_blobs(oid for mode, oid in tree.values() if mode != "160000"))
    tags = g.tags()
    assert len(blobs) > 60 and tags == []
    assert len(started) <= 4, started  # ls_tree: check + batch; read_blobs: batch; tags: none
    assert not [c for c in psutil.Process().children(recursive=True) if c.name() == "git"]
    assert len(os.listdir("/proc/self/fd")) <= fds


def test_gitpython_never_traces_commands_or_their_output(tmp_path, caplog, monkeypatch) -> None:
    """GIT_PYTHON_TRACE=full would log every command's output (file contents) to the loggers a
    flow run forwards to Prefect."""
    import logging
    import subprocess

    from git.cmd import Git as GitRunner

    from tasks_lib.gitops.repo import Git

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(GitRunner, "GIT_PYTHON_TRACE", "full")  # as if set before the import
    with caplog.at_level(logging.DEBUG):
        Git(tmp_path).run("hash-object", "--stdin", input=b"TOKEN=s3cr3t-value\n")
    assert not [r for r in caplog.records if r.name.startswith("git")]


def test_batch_reads_stream_in_order_refuse_bad_ids_and_end_their_git(root: Path) -> None:
    """read_blobs is one pipelined ``cat-file --batch``: answers in the order asked (duplicates
    too), a missing object or a hostile id is a GitError (an id never reaches git as anything
    but one hex line), and a reader that stops early leaves no git behind."""
    from tasks_lib.core.errors import GitError

    g = Git(root)
    tree = g.ls_tree("HEAD", "t")
    oids = [oid for mode, oid in tree.values() if mode != "160000"]
    asked = [*reversed(oids), oids[0]]
    got = list(g.read_blobs(asked))
    assert [oid for oid, _ in got] == asked
    assert all(data == sh(root, "cat-file", "blob", oid) for oid, data in got)
    for bad in ("-rf", "HEAD", f"{oids[0]}\n{oids[1]}", f"{oids[0]} x", "../x"):
        with pytest.raises(GitError, match="not an object id"):
            list(g.read_blobs([oids[0], bad]))
    with pytest.raises(GitError, match="missing"):
        list(g.read_blobs([oids[0], "0" * 40]))
    reader = g.read_blobs(oids)
    next(reader)
    reader.close()
    assert not [c for c in psutil.Process().children(recursive=True) if c.name() == "git"]


def test_ls_tree_of_what_is_no_commit_is_a_git_error(root: Path, tmp_path: Path) -> None:
    from tasks_lib.core.errors import GitError

    g = Git(root)
    blob = g.ls_tree("HEAD", "other.txt")["other.txt"][1]
    planted = tmp_path / "written"
    for rev in ("no-such-branch", blob, f"--output={planted}", "-rf"):
        with pytest.raises(GitError, match="is not a commit"):
            g.ls_tree(rev, "t")
    assert not planted.exists()  # an option-like rev stays a rev (--end-of-options)
    assert g.ls_tree("HEAD", "t/") == g.ls_tree("HEAD", "t") and g.ls_tree("HEAD", "t/sub") == {}
