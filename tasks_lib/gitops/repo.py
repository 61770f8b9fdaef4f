"""git through its command line: argument lists only, ``--`` before paths, ``-z`` output.

GitPython is deliberately not used: it is not thread-safe and leaks processes unless every
``Repo`` is closed; one short ``git`` process per call is predictable and easy to reason about.
Callers validate task ids, versions and tags (``tasks_lib.core.ids``) before they get here.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core.errors import Conflict, GitError, NotFound, TransientError
from tasks_lib.core.safefs import replace_file
from tasks_lib.secrets import masking

# Variables that would redirect git to another repository or index when we run from a hook.
_STRIPPED_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR",
)


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
    """One workspace's git. Cheap to construct; holds no open processes."""

    def __init__(self, root: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_LITERAL_PATHSPECS": "1"})
        if extra_env:
            env.update(extra_env)
        self._env = env
        self._object_format: str | None = None

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {**self._env, **(env or {})}
        cmd = ["git", "-c", "core.quotepath=off", *args]
        try:
            proc = subprocess.run(
                cmd, cwd=self.root, input=input, env=full_env, capture_output=True,
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"git {args[0]} timed out after {timeout:.0f}s") from exc
        except FileNotFoundError as exc:
            raise GitError("git is not installed", "install git and try again") from exc
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {_tail(proc.stderr)}")
        return proc

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
        return self.rev("HEAD^{commit}")

    def branch(self) -> str | None:
        proc = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def git_dir(self) -> Path:
        return (self.root / self.out("rev-parse", "--git-dir").strip()).resolve()

    def common_dir(self) -> Path:
        """The repository's shared git directory (a worktree's ``.git`` is a file naming it)."""
        return (self.root / self.out("rev-parse", "--git-common-dir").strip()).resolve()

    def index_path(self) -> Path:
        return (self.root / self.out("rev-parse", "--git-path", "index").strip()).resolve()

    def empty_tree(self) -> str:
        return self.out("hash-object", "-t", "tree", "--stdin", input=b"").strip()

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
        submodule, which callers refuse) under ``prefix`` at ``rev``."""
        raw = self.run("ls-tree", "-r", "-z", "--full-tree", rev, "--", prefix).stdout
        found: dict[str, tuple[str, str]] = {}
        for rec in raw.split(b"\0"):
            if not rec:
                continue
            meta, path = rec.split(b"\t", 1)
            mode, kind, oid = meta.decode().split(" ")
            if kind in ("blob", "commit"):
                found[path.decode("utf-8", "surrogateescape")] = (mode, oid)
        return found

    def blob_id(self, data: bytes) -> str:
        """The object id git gives a blob of ``data`` in this repository (sha1 or sha256)."""
        if self._object_format is None:
            self._object_format = self.out("rev-parse", "--show-object-format").strip()
        return hashlib.new(self._object_format, b"blob %d\0" % len(data) + data).hexdigest()

    def read_blobs(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Stream blob contents through one ``git cat-file --batch`` process."""
        oids = list(oids)
        if not oids:
            return
        proc = subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=self.root, env=self._env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for oid in oids:
                proc.stdin.write(oid.encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3:
                    raise GitError(f"git cat-file: object {oid} is missing")
                size = int(header[2])
                data = proc.stdout.read(size)
                proc.stdout.read(1)
                yield oid, data
        finally:
            proc.stdin.close()
            proc.stdout.close()
            proc.wait()

    def show_file(self, rev: str, path: str) -> bytes | None:
        proc = self.run("cat-file", "blob", f"{rev}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

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
        infos = self.tags(f"refs/tags/{name}")
        return infos[0] if infos and infos[0].name == name else None

    def tags(self, pattern: str = "refs/tags") -> list[TagInfo]:
        fmt = "%00".join([
            "%(refname:strip=2)", "%(objectname)", "%(objecttype)", "%(*objectname)",
            "%(taggername) %(taggeremail)", "%(taggerdate:iso-strict)", "%(contents:subject)",
        ]) + "%00%00"
        raw = self.run("for-each-ref", f"--format={fmt}", pattern).stdout
        result: list[TagInfo] = []
        for rec in raw.split(b"\0\0\n"):
            if not rec.strip(b"\n"):
                continue
            f = rec.strip(b"\n").decode("utf-8", "surrogateescape").split("\0")
            if len(f) < 7:
                continue
            annotated = f[2] == "tag"
            result.append(TagInfo(
                name=f[0], object=f[1], annotated=annotated,
                commit=(f[3] or None) if annotated else f[1],
                tagger=f[4].strip(), date=f[5], subject=f[6],
            ))
        return result

    def tag_message(self, name: str) -> str:
        obj = self.rev(f"refs/tags/{name}")
        if obj is None:
            raise NotFound(f"tag {name} does not exist")
        raw = self.run("cat-file", "tag", obj).stdout.decode("utf-8", "surrogateescape")
        _, _, body = raw.partition("\n\n")
        return body

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
        obj = self.rev(f"refs/tags/{name}")
        assert obj is not None
        return obj

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


def _nul(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


def _tail(stderr: bytes, lines: int = 4) -> str:
    text = masking.mask(stderr.decode("utf-8", "replace")).strip().splitlines()
    return " / ".join(text[-lines:]) if text else "(no message)"
