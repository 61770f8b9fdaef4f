"""git through GitPython: its object model for what git stores, its command runner for plumbing.

Refs, tags, commits and single files are read through a ``git.Repo`` opened and closed for each
use (GitPython is not thread-safe and leaks its persistent ``cat-file`` processes and file
descriptors unless every ``Repo`` is closed); a task's whole tree and its many blobs through one
``ls-tree`` and one pipelined ``cat-file --batch`` (the persistent ``cat-file`` costs a round
trip per object), so one operation costs a constant number of git processes however many
objects it reads. Plumbing that needs exact flags (the scratch index, ``update-index --stdin``,
``update-ref`` compare-and-swap, ``-z`` listings of the index and the working tree) runs through
GitPython's command runner (what ``repo.git`` is) with argument lists and ``--`` before paths. docs/design.md ("git through
GitPython") says which goes where and why. Callers validate task ids, versions and tags
(``tasks_lib.core.ids``) before they get here.

One module because it is the one place that knows git: splitting the class
would spread the environment and process rules over several files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from git import Repo
from git.cmd import Git as GitRunner
from git.exc import (
    BadName,
    BadObject,
    GitCommandNotFound,
    InvalidGitRepositoryError,
    NoSuchPathError,
)
from git.objects import Commit
from git.refs import SymbolicReference, TagReference
from gitdb.base import OStream

from tasks_lib.core.errors import Conflict, GitError, NotFound, TransientError
from tasks_lib.core.safefs import replace_file
from tasks_lib.gitops import rawobjects
from tasks_lib.secrets import masking

# GitPython traces each command (with GIT_PYTHON_TRACE=full, its output: file contents, so
# possibly secrets) to its loggers, which a flow run forwards to the Prefect API: never.
GitRunner.GIT_PYTHON_TRACE = False
logging.getLogger("git").setLevel(logging.WARNING)

# Variables that would redirect git to another repository or index when we run from a hook.
# GitPython copies os.environ into every git it starts and cannot unset a variable, so when one
# of these is set it is pinned to this repository's own value instead (``_pins``).
_STRIPPED_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR",
)
_TIMED_OUT = b"Timeout: the command"  # how GitPython's kill_after_timeout reports


@dataclass(frozen=True)
class TagInfo:
    name: str
    object: str           # the tag object's id (annotated) or the commit id (lightweight)
    annotated: bool
    commit: str | None    # what it finally points at (peeled)
    tagger: str
    date: str             # ISO 8601 (strict)
    subject: str


class Git:
    """One workspace's git. Cheap to construct; holds no open processes (each ``repo()`` use
    closes its own)."""

    def __init__(self, root: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        env = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_LITERAL_PATHSPECS": "1"}
        if extra_env:
            env.update(extra_env)
        self._env = env
        self._pinned: dict[str, str] | None = None
        self._object_format: str | None = None

    # -- running ---------------------------------------------------------------------------
    @contextmanager
    def repo(self) -> Iterator[Repo]:
        """GitPython's ``Repo`` of this workspace, closed on exit (ending its ``cat-file``
        processes). One per use and never shared: GitPython is not thread-safe."""
        env = self._full_env()
        try:
            r = Repo(self.root, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError) as exc:
            raise GitError(f"{self.root} is not a git repository",
                           "run the command inside the workspace's git repository") from exc
        with r:
            r.git.update_environment(**env)
            yield r

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[bytes]:
        """One git command (GitPython's runner: argument list, no shell), its output in bytes."""
        cmd = ["git", "-c", "core.quotepath=off", *args]
        if not self.root.is_dir():  # GitPython would fall back to the current directory
            raise GitError(f"{self.root} is not a directory", "check the workspace path")
        runner = GitRunner(self.root)
        runner.update_environment(**self._full_env(), **(env or {}))
        with _stdin(input) as stdin:
            try:
                code, stdout, stderr = runner.execute(
                    cmd, istream=stdin, with_extended_output=True, with_exceptions=False,
                    stdout_as_string=False, strip_newline_in_stdout=False,
                    kill_after_timeout=timeout)
            except GitCommandNotFound as exc:
                raise GitError("git is not installed", "install git and try again") from exc
        assert isinstance(stdout, bytes)
        stderr = stderr.encode("utf-8", "surrogateescape")  # GitPython decodes it
        if timeout is not None and stderr.startswith(_TIMED_OUT):
            raise TransientError(f"git {args[0]} timed out after {timeout:.0f}s")
        if check and code != 0:
            raise GitError(f"git {args[0]} failed: {_tail(stderr)}")
        return subprocess.CompletedProcess(cmd, code, stdout, stderr)

    def _full_env(self) -> dict[str, str]:
        if self._pinned is None:
            self._pinned = self._pins()
        return {**self._pinned, **self._env}

    def _pins(self) -> dict[str, str]:
        """This repository's own values for the redirecting variables that are set (none is,
        outside a hook): what git would find with them unset."""
        if not any(k in os.environ for k in _STRIPPED_ENV):
            return {}
        clean = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        fields = ("--absolute-git-dir", "--git-common-dir", "--show-toplevel")
        proc = subprocess.run(["git", "rev-parse", *fields], cwd=self.root, env=clean,
                              capture_output=True, check=False)
        lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        if proc.returncode != 0 or len(lines) != len(fields):
            raise GitError(f"{self.root} is not a git repository",
                           "run the command inside the workspace's git repository")
        git_dir = Path(lines[0])
        common = (self.root / lines[1]).resolve()
        return {"GIT_DIR": str(git_dir), "GIT_COMMON_DIR": str(common),
                "GIT_WORK_TREE": lines[2], "GIT_INDEX_FILE": str(git_dir / "index"),
                "GIT_OBJECT_DIRECTORY": str(common / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": "", "GIT_NAMESPACE": "", "GIT_PREFIX": ""}

    def out(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).stdout.decode("utf-8", "surrogateescape")  # type: ignore[arg-type]

    # -- repository facts -----------------------------------------------------------------
    @staticmethod
    def toplevel(start: Path) -> Path | None:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True,
            env={k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}, check=False,
        )
        if proc.returncode != 0:
            return None
        return Path(proc.stdout.decode().strip())

    def rev(self, rev: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def head(self) -> str | None:
        """The commit HEAD names (through a tag if need be); None when unborn or broken."""
        try:
            with self.repo() as r:
                return r.head.commit.hexsha
        except (GitError, ValueError, TypeError):
            return None

    def branch(self) -> str | None:
        """The branch HEAD is on (unborn or not), None when detached."""
        try:
            with self.repo() as r:
                path = r.head.reference.path
        except (GitError, ValueError, TypeError):  # TypeError: HEAD is detached
            return None
        return path.removeprefix("refs/heads/") or None

    def git_dir(self) -> Path:
        with self.repo() as r:
            return Path(r.git_dir).resolve()

    def common_dir(self) -> Path:
        """The repository's shared git directory (a worktree's ``.git`` is a file naming it)."""
        with self.repo() as r:
            return Path(r.common_dir).resolve()

    def index_path(self) -> Path:
        given = self._env.get("GIT_INDEX_FILE")
        return (self.root / given).resolve() if given else self.git_dir() / "index"

    def object_format(self) -> str:
        """``sha1`` or ``sha256``."""
        if self._object_format is None:
            self._object_format = self.out("rev-parse", "--show-object-format").strip()
        return self._object_format

    def empty_tree(self) -> str:
        return hashlib.new(self.object_format(), b"tree 0\0").hexdigest()

    def zero_oid(self) -> str:
        return "0" * len(self.empty_tree())

    def operation_in_progress(self) -> str | None:
        """A merge, rebase, cherry-pick or bisect that a commit would interfere with."""
        gd = self.git_dir()
        for name, what in (
            ("MERGE_HEAD", "a merge"), ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase"),
            ("CHERRY_PICK_HEAD", "a cherry-pick"), ("REVERT_HEAD", "a revert"),
        ):
            if (gd / name).exists():
                return what
        return None

    def identity_env(self) -> dict[str, str]:
        """Author/committer for our commits: git's own config, else a clear fallback."""
        if self.run("var", "GIT_AUTHOR_IDENT", check=False).returncode == 0:
            return {}
        import socket  # only for a commit without git's identity

        host = socket.gethostname() or "localhost"
        name = os.environ.get("USER") or "clawback"
        return {
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": f"{name}@{host}",
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": f"{name}@{host}",
        }

    # -- files -----------------------------------------------------------------------------
    def ls_files(self, prefix: str, *, untracked: bool = True) -> list[str]:
        """Tracked (index) plus untracked, non-ignored files under ``prefix`` (repo-relative)."""
        args = ["ls-files", "-z", "--cached"]
        if untracked:
            args += ["--others", "--exclude-standard"]
        raw = self.run(*args, "--", prefix).stdout
        return sorted({p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p})

    def index_entries(self, prefix: str) -> dict[str, tuple[str, str, str]]:
        """{path: (mode, object id, stage)} of the index entries under ``prefix`` (a gitlink,
        i.e. a submodule, has mode 160000; an unmerged path has a stage other than 0)."""
        raw = self.run("ls-files", "-s", "-z", "--", prefix).stdout
        found: dict[str, tuple[str, str, str]] = {}
        for rec in raw.split(b"\0"):
            if rec:
                meta, path = rec.split(b"\t", 1)
                mode, oid, stage = meta.decode().split(" ")
                found[path.decode("utf-8", "surrogateescape")] = (mode, oid, stage)
        return found

    def untracked(self, prefix: str) -> list[str]:
        """Untracked, non-ignored paths under ``prefix``; a nested repository is listed as its
        directory with a trailing ``/``."""
        raw = self.run("ls-files", "-z", "--others", "--exclude-standard", "--", prefix).stdout
        return sorted(p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p)

    def ls_tree(self, rev: str, prefix: str) -> dict[str, tuple[str, str]]:
        """{path: (mode, object id)} of the blobs, symlinks and gitlinks (mode 160000: a
        submodule, which callers refuse) under ``prefix`` at ``rev``, in git's order: one
        ``ls-tree -r -z`` (a 6,000-file task in ~20 ms; GitPython's walk of the same trees, one
        ``cat-file`` round trip per tree and its name checks, took ~0.2 s)."""
        where = prefix.strip("/")
        proc = self.run("ls-tree", "-r", "-z", "--full-tree", "--end-of-options",
                        f"{rev}^{{commit}}", *(["--", where] if where else []), check=False)
        if proc.returncode != 0:
            if self.rev(f"{rev}^{{commit}}") is None:
                raise GitError(f"git: {rev} is not a commit in this repository")
            raise GitError(f"git ls-tree failed: the tree of {rev} is damaged ({_tail(proc.stderr)})")
        found: dict[str, tuple[str, str]] = {}
        for rec in proc.stdout.split(b"\0"):
            if rec:
                meta, path = rec.split(b"\t", 1)
                mode, _, oid = meta.decode().split(" ")
                found[path.decode("utf-8", "surrogateescape")] = (mode, oid)
        return found

    def blob_id(self, data: bytes) -> str:
        """The object id git gives a blob of ``data`` in this repository (sha1 or sha256)."""
        return hashlib.new(self.object_format(), b"blob %d\0" % len(data) + data).hexdigest()

    def read_blobs(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Blob contents in the order asked, all through one ``cat-file --batch`` that is fed
        every id at once and read as it answers (GitPython's persistent ``cat-file`` costs a
        round trip per object: 5,500 blobs took ~1.5 s of waiting). GitError for a missing one."""
        for oid, kind, data in self._batch(list(oids)):
            if kind is None:
                raise GitError(f"git cat-file: object {oid} is missing")
            yield oid, data

    def _batch(self, oids: list[str]) -> Iterator[tuple[str, str | None, bytes]]:
        """(id, type or None when missing, content) of each object, streamed from one
        ``cat-file --batch`` (its input a file, so no writer thread and no pipe deadlock)."""
        if not oids:
            return
        for oid in oids:  # one id a line: a space or newline would shift every answer after it
            if len(oid) not in (40, 64) or oid.strip("0123456789abcdef"):
                raise GitError(f"git cat-file: {oid!r} is not an object id")
        runner = GitRunner(self.root)
        runner.update_environment(**self._full_env())
        with _stdin(_lines(oids)) as stdin:
            try:  # the wrapper ends the process when it is collected: keep it until the end
                handle = runner.execute(["git", "cat-file", "--batch"], istream=stdin,
                                        as_process=True)
            except GitCommandNotFound as exc:
                raise GitError("git is not installed", "install git and try again") from exc
        proc = handle.proc
        try:
            out = proc.stdout
            for oid in oids:
                header = out.readline().rstrip(b"\n").split(b" ")
                if len(header) != 3:  # "<oid> missing", or git gave up
                    if header[-1:] != [b"missing"]:
                        raise GitError(f"git cat-file --batch failed at {oid}: "
                                       f"{_tail(proc.stderr.read())}")
                    yield oid, None, b""
                    continue
                size = int(header[2])
                data = out.read(size)
                if len(data) != size or out.read(1) != b"\n":
                    raise GitError(f"git cat-file --batch: {oid} was cut short")
                yield oid, header[1].decode(), data
        finally:  # also when the reader stops early: no git outlives the read
            out.close()
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
            proc.stderr.close()
            del handle

    def show_file(self, rev: str, path: str) -> bytes | None:
        """The blob at ``path`` in ``rev`` (``rev`` "": in the index), None if there is none."""
        if not rev:  # the index (perhaps the hook's GIT_INDEX_FILE): git reads it best
            proc = self.run("cat-file", "blob", f":{path}", check=False)
            return proc.stdout if proc.returncode == 0 else None
        try:
            with self.repo() as r:
                item = _commit(r, rev).tree.join(path)
                return item.data_stream.read() if item.type == "blob" else None
        except (GitError, KeyError, ValueError, TypeError):
            return None

    def status_paths_many(self, prefixes: list[str]) -> list[str]:
        """Like ``status_paths`` for several directories in one git call."""
        if not prefixes:
            return []
        paths: list[str] = []
        for chunk in range(0, len(prefixes), 500):
            paths += self.status_paths_in(prefixes[chunk:chunk + 500])
        return paths

    def status_paths_in(self, prefixes: list[str]) -> list[str]:
        raw = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
                       *prefixes).stdout
        return _porcelain_paths(raw)

    def object_ids(self, revs: list[str]) -> dict[str, str | None]:
        """Resolve many ``rev:path`` expressions in one ``git cat-file --batch-check``."""
        if not revs:
            return {}
        out = self.run("cat-file", "--batch-check=%(objectname)",
                       input="".join(r + "\n" for r in revs).encode()).stdout.decode().splitlines()
        return {r: (o if not o.endswith("missing") else None) for r, o in zip(revs, out, strict=True)}

    def changed_between(self, a: str, b: str, prefix: str) -> list[str]:
        raw = self.run("diff", "--name-only", "-z", "--no-renames", a, b, "--", prefix).stdout
        return [p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p]

    # -- committing only some paths ---------------------------------------------------------
    def commit_paths(self, paths: list[str], message: str, scratch: Path,
                     contents: Mapping[str, bytes] | None = None,
                     removed: Iterable[str] = (),
                     check: Callable[[list[tuple[str, str, str]]], None] | None = None,
                     ) -> tuple[str, str | None]:
        """Commit the working-tree state of ``paths`` and nothing else; return (new, old) HEAD.

        Other staged or unstaged work in the repository is neither committed nor lost: the real
        index gets ``paths`` staged (``update-index``, literal paths), the commit is built from a
        scratch copy of it with every other staged change reset to HEAD, and HEAD moves by a
        compare-and-swap so a concurrent commit is refused rather than overwritten.
        ``paths`` must all be in the index or present in the working tree. ``contents``: files
        committed (and staged) with the given bytes instead of the working tree's, which keeps
        whatever else the working-tree file holds as an unstaged change. ``removed``: index
        entries to drop whatever the working tree holds there (e.g. files behind a directory
        that became a symlink, which ``update-index --remove`` refuses to look at). ``check``:
        called with ``(path, mode, object id)`` of every one of ``paths`` whose content differs
        from HEAD's, as the commit will hold it, before the tree is written; it may refuse.
        """
        old = self.head()
        if self.branch() is None and old is not None:
            raise Conflict("HEAD is detached", "check out your branch (git switch main), then retry")
        base = old or self.empty_tree()
        scratch.mkdir(parents=True, exist_ok=True)
        given = dict(contents or {})
        removed = [p for p in removed if p not in given]
        # literal paths, stat-aware, no pathspec matching (which is quadratic in the path count)
        if removed:
            self.run("update-index", "--force-remove", "-z", "--stdin", input=_nul(removed))
        self.run("update-index", "--add", "--remove", "--replace", "-z", "--stdin",
                 input=_nul([p for p in paths if p not in given]))
        for path, data in given.items():
            oid = self.out("hash-object", "-w", "--stdin", input=data).strip()
            staged = self.out("ls-files", "-s", "-z", "--", path).split(" ", 1)
            mode = staged[0] if staged[0] in ("100644", "100755") else "100644"
            self.run("update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}")
        paths = [*paths, *removed, *(p for p in given if p not in paths)]
        tmp_index = scratch / f"index.{os.getpid()}"
        replace_file(tmp_index, self.index_path().read_bytes())
        try:
            env = {"GIT_INDEX_FILE": str(tmp_index)}
            ours = set(paths)
            raw = self.run("diff-index", "--cached", "--raw", "-z", "--no-renames", base,
                           env=env).stdout.split(b"\0")
            changed = [(raw[i + 1].decode("utf-8", "surrogateescape"), raw[i].decode().split(" "))
                       for i in range(0, len(raw) - 1, 2) if raw[i].startswith(b":")]
            others = [p for p, _ in changed if p not in ours]
            if check is not None:  # what the commit will hold, exactly
                check([(p, meta[1], meta[3]) for p, meta in changed
                       if p in ours and meta[4] != "D"])
            if others:
                if old is None:
                    self.run("rm", "--cached", "-q", "--pathspec-from-file=-",
                             "--pathspec-file-nul", input=_nul(others), env=env)
                else:
                    self.run("reset", "-q", old, "--pathspec-from-file=-", "--pathspec-file-nul",
                             input=_nul(others), env=env)
            tree = self.out("write-tree", env=env).strip()
        finally:
            tmp_index.unlink(missing_ok=True)
        ident = self.identity_env()
        parents = ["-p", old] if old else []
        new = self.out("commit-tree", tree, *parents, "-F", "-", input=message.encode(),
                       env=ident).strip()
        proc = self.run("update-ref", "-m", f"clawback: {message.splitlines()[0]}", "HEAD", new,
                        old or self.zero_oid(), check=False)
        if proc.returncode != 0:
            raise Conflict(f"HEAD moved while committing: {_tail(proc.stderr)}",
                           "another commit landed at the same time; run the command again")
        return new, old

    def uncommit(self, new: str, old: str | None, paths: list[str]) -> None:
        """Undo ``commit_paths``: HEAD back to ``old`` (only if it is still ``new``)."""
        if old is None:
            proc = self.run("update-ref", "-d", "HEAD", new, check=False)
        else:
            proc = self.run("update-ref", "-m", "clawback: undo", "HEAD", old, new, check=False)
        if proc.returncode != 0:
            raise Conflict(f"HEAD moved since our commit {new[:12]}; not undoing it",
                           "inspect `git log` and revert that commit by hand if needed")

    # -- tags --------------------------------------------------------------------------------
    def tag_info(self, name: str) -> TagInfo | None:
        """One tag, read through its own ref (no listing of every tag)."""
        with self.repo() as r:
            return _tag_info(r, f"refs/tags/{name}")

    def tags(self, pattern: str = "refs/tags") -> list[TagInfo]:
        """The tags whose ref matches ``pattern`` as ``git for-each-ref`` matches it, by name;
        a tag whose object is missing is left out, as git leaves it out."""
        with self.repo() as r:
            paths = sorted((t.path for t in TagReference.iter_items(r)
                            if rawobjects.ref_matches(t.path, pattern)),
                           key=lambda p: p.encode("utf-8", "surrogateescape"))
            found = [_tag_info(r, p) for p in paths]
        return [t for t in found if t is not None]

    def tag_messages(self, pattern: str = "refs/tags") -> list[tuple[TagInfo, str]]:
        """Like :meth:`tags`, each with its message ("" for a lightweight tag), in two processes
        however many tags: one ``for-each-ref`` lists them, one ``cat-file --batch`` reads every
        object at once (GitPython's persistent ``cat-file`` answers one object per round trip,
        which at hundreds of tags costs more than the rest of a hook's check)."""
        listing = self.run("for-each-ref", "--format=%(objectname) %(refname)", "--",
                           pattern).stdout.split(b"\n")
        refs = [line.decode("utf-8", "surrogateescape").split(" ", 1)
                for line in listing if b" " in line]
        found: list[tuple[TagInfo, str]] = []
        for (oid, ref), (_, kind, body) in zip(refs, self._batch([oid for oid, _ in refs]), strict=True):
            if kind is not None:
                found.append(_tag_of(ref.removeprefix("refs/tags/"), oid, kind.encode(), body))
        return found

    def unreached(self, commits: Iterable[str]) -> set[str]:
        """The ``commits`` that no local or remote-tracking branch reaches, in one ``rev-list``
        (the commits on standard input, the branches as its negative side)."""
        wanted = sorted(set(commits))
        if not wanted:
            return set()
        args = ("rev-list", "--stdin", "--not", "--branches", "--remotes")
        proc = self.run(*args, input=_lines(wanted), check=False)
        if proc.returncode != 0:  # a tag on a tree or a blob, or a missing object: commits only
            kinds = self.out("cat-file", "--batch-check=%(objectname) %(objecttype)",
                             input=_lines(wanted)).splitlines()
            wanted = [k.split(" ")[0] for k in kinds if k.endswith(" commit")]
            proc = self.run(*args, input=_lines(wanted))
        return set(wanted) & set(proc.stdout.decode().split())

    def tag_message(self, name: str) -> str:
        with self.repo() as r:
            try:
                oid = SymbolicReference.dereference_recursive(r, f"refs/tags/{name}")
            except ValueError as exc:
                raise NotFound(f"tag {name} does not exist") from exc
            stream = _stream(r, oid)
            if stream is None or stream.type != b"tag":
                raise GitError(f"git cat-file failed: tag {name} is not an annotated tag")
            return rawobjects.parse_tag(stream.read()).message

    def create_tag(self, name: str, commit: str, message: str) -> str:
        """Create an annotated tag; an existing tag is a Conflict, never moved."""
        ident = self.identity_env()
        proc = self.run("tag", "-a", "--cleanup=verbatim", "-F", "-", name, commit,
                        input=message.encode(), env=ident, check=False)
        if proc.returncode != 0:
            if b"already exists" in proc.stderr:
                raise Conflict(f"tag {name} already exists",
                               "tags are immutable; choose another version (--bump or --version)")
            raise GitError(f"git tag failed: {_tail(proc.stderr)}")
        with self.repo() as r:
            return SymbolicReference.dereference_recursive(r, f"refs/tags/{name}")

    def delete_tag(self, name: str, expected_object: str) -> None:
        """Delete a tag we created, only if it still is the object we created."""
        self.run("update-ref", "-d", f"refs/tags/{name}", expected_object, check=False)

    def push(self, remote: str, refs: list[str]) -> None:
        """Push ``refs``; network trouble is transient (retried), a rejection is not."""
        proc = self.run("push", "--porcelain", remote, *refs, check=False, timeout=300)
        if proc.returncode == 0:
            return
        err = proc.stderr.decode("utf-8", "replace").lower()
        hint = f"fix the cause, then push by hand: git push {remote} {' '.join(refs)}"
        if any(s in err for s in _NETWORK_TROUBLE):
            raise TransientError(f"git push to {remote} failed: {_tail(proc.stderr)}", hint)
        raise GitError(f"git push to {remote} was refused: {_tail(proc.stderr)}", hint)

    def default_remote(self) -> str | None:
        remotes = self.out("remote").split()
        return "origin" if "origin" in remotes else (remotes[0] if remotes else None)


_NETWORK_TROUBLE = (
    "could not resolve host", "connection refused", "connection reset", "timed out",
    "unable to access", "connection closed", "early eof", "broken pipe", "network is unreachable",
    "temporary failure", "the remote end hung up unexpectedly",
)


def _commit(r: Repo, rev: str) -> Commit:
    try:
        return r.commit(rev)
    except (BadName, BadObject, ValueError) as exc:
        raise GitError(f"git: {rev} is not a commit in this repository") from exc


def _stream(r: Repo, oid: str) -> OStream | None:
    """The object's stream (``.type``, ``.read()``) from the persistent cat-file, None if missing."""
    try:
        return r.odb.stream(bytes.fromhex(oid))
    except ValueError:
        return None


def _tag_info(r: Repo, path: str) -> TagInfo | None:
    found = _read_tag(r, path)
    return found[0] if found is not None else None


def _read_tag(r: Repo, path: str) -> tuple[TagInfo, str] | None:
    """The tag at ``path`` and its message ("" for a lightweight tag); None if it is gone."""
    try:
        oid = SymbolicReference.dereference_recursive(r, path)
    except ValueError:
        return None
    stream = _stream(r, oid)
    if stream is None:
        return None
    return _tag_of(path.removeprefix("refs/tags/"), oid, stream.type, stream.read())


def _tag_of(name: str, oid: str, kind: bytes, raw: bytes) -> tuple[TagInfo, str]:
    """A tag from the object its ref names: annotated (a tag object) or lightweight."""
    if kind != b"tag":  # lightweight: the commit's subject, no tagger
        subject = rawobjects.subject(raw) if kind == b"commit" else ""
        return TagInfo(name=name, object=oid, annotated=False, commit=oid, tagger="", date="",
                       subject=subject), ""
    tag = rawobjects.parse_tag(raw)
    return TagInfo(name=name, object=oid, annotated=True, commit=tag.object or None,
                   tagger=tag.tagger, date=tag.date, subject=rawobjects.subject(raw)), tag.message


def _stdin(data: bytes | None) -> AbstractContextManager[IO[bytes] | None]:
    """A file holding ``data`` for a command's standard input (GitPython's runner takes a file)."""
    if data is None:
        return contextlib.nullcontext()
    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return f


def _porcelain_paths(raw: bytes) -> list[str]:
    paths: list[str] = []
    parts = raw.split(b"\0")
    i = 0
    while i < len(parts):
        rec = parts[i]
        i += 1
        if len(rec) < 4:
            continue
        paths.append(rec[3:].decode("utf-8", "surrogateescape"))
        if rec[:1] in (b"R", b"C"):
            i += 1  # the rename source follows
    return paths


def _lines(items: Iterable[str]) -> bytes:
    return "".join(i + "\n" for i in items).encode()


def _nul(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


def _tail(stderr: bytes, lines: int = 4) -> str:
    text = masking.mask(stderr.decode("utf-8", "replace")).strip().splitlines()
    return " / ".join(text[-lines:]) if text else "(no message)"
