"""Materialised previews (docs/design.md, "Preview (the time machine)", ``--materialize``): a
stored version written out exactly, away from the live task.

Where: a directory the operator names (it must not exist or be empty, must lie outside the
workspace, and no component of its path may be a symlink), or a new one under
``.clawback/previews/`` named ``<task>-v<version>-<time>-<random>``. What: every file of the
manifest, from git's blobs at the snapshot's commit, each checked against its sha256 before it
is written; 100755 files executable, 120000 symlinks as links with their exact target bytes
(never followed: a link into ``state/`` points at nothing there). Never runtime state, never a
process. The directory itself is made and opened relative to a descriptor of its parent,
reached from ``/`` without following a link (``safefs.open_parent``), so a component swapped
for a link after the check is never written through. Writing goes through directory
descriptors opened with ``O_NOFOLLOW``, files created with ``O_EXCL | O_NOFOLLOW``; nothing is
fsynced (a preview is disposable). The written tree is then read back and compared with the
manifest (level 1 of a smoke run). The index, the record of what was written and the marker
that let ``--cleanup`` remove exactly that are in ``preview/index.py`` and ``preview/written.py``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput, Conflict, VerificationFailed
from tasks_lib.core.filenames import shown
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import sha256_hex
from tasks_lib.preview.index import (
    DIR_FLAGS,
    MARKER,
    NEW_FLAGS,
    READ_FLAGS,
    inside,
    previews_dir,
    put_marker,
    record,
    remove,
)
from tasks_lib.preview.resolve import Resolved


@dataclass(frozen=True)
class Materialized:
    id: str
    path: Path
    task_id: str
    version: str
    tag: str
    files: int
    bytes: int
    named: bool          # the operator named the directory (else under .clawback/previews/)


@dataclass(frozen=True)
class TreeCheck:
    ok: bool
    detail: str
    files: int


# -- where --------------------------------------------------------------------------------
def _no_links(path: Path) -> None:
    """BadInput when an existing component of ``path`` (absolute) is a symlink."""
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(f"{shown(str(current))} is a symlink: a preview is never written "
                           "through a link",
                           f"give the real path instead ({shown(os.path.realpath(path))})")


def _destination(ws: Workspace, given: str | None, name: str) -> tuple[Path, bool]:
    """(directory to write, whether it is ours to create). BadInput for a directory that
    exists and is not empty, lies inside the workspace, or passes through a link."""
    if given is None:  # (its real path: .clawback/ may be a link to another disk)
        return Path(os.path.realpath(previews_dir(ws))) / name, True
    if not given or "\0" in given:
        raise BadInput("--materialize needs a directory", "give a new or empty directory")
    path = Path(os.path.abspath(given))
    _no_links(path)
    root = Path(os.path.realpath(ws.root))
    previews = (Path(os.path.realpath(ws.state_dir)) / "previews", ws.root / ".clawback" / "previews")
    if (inside(path, root) or inside(path, ws.root)) and not any(inside(path, p) for p in previews):
        raise BadInput(f"{shown(str(path))} lies inside the workspace: a preview would be "
                           "mistaken for the task's files", "give a directory outside the "
                           "workspace, or leave DIR out for a new one under .clawback/previews/")
    if inside(root, path):
        raise BadInput(f"{shown(str(path))} contains the workspace", "give a new or empty directory")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.lstat(path.parent) if path.parent.exists() else None
        if parent is None or not stat.S_ISDIR(parent.st_mode):
            raise BadInput(f"{shown(str(path.parent))} does not exist",
                           "create the parent directory first, or give another DIR") from None
        return path, True
    if not stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{shown(str(path))} exists and is not a directory",
                       "give a new or empty directory")
    with os.scandir(path) as listing:
        empty = next(listing, None) is None
    if not empty:
        raise BadInput(f"{shown(str(path))} is not empty: a preview never writes over files",
                       "give a new or empty directory")
    return path, False


# -- writing -------------------------------------------------------------------------------
class _Writer:
    """Files and links under one directory descriptor, parents made as real directories."""

    def __init__(self, top: int) -> None:
        self.fds = {"": top}

    def _dir(self, rel: str) -> int:
        if rel in self.fds:
            return self.fds[rel]
        parent, _, name = rel.rpartition("/")
        pfd = self._dir(parent)
        try:
            os.mkdir(name, 0o755, dir_fd=pfd)
        except FileExistsError:
            pass
        fd = os.open(name, DIR_FLAGS, dir_fd=pfd)  # ELOOP / ENOTDIR: never through a link
        self.fds[rel] = fd
        return fd

    def put(self, rel: str, data: bytes, mode: str) -> None:
        parent, _, name = rel.rpartition("/")
        fd = self._dir(parent)
        if mode == "120000":
            os.symlink(os.fsdecode(data), name, dir_fd=fd)
            return
        ffd = os.open(name, NEW_FLAGS, 0o600, dir_fd=fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(ffd, view):]
            os.fchmod(ffd, 0o755 if mode == "100755" else 0o644)
        finally:
            os.close(ffd)

    def close(self) -> None:
        for rel, fd in self.fds.items():
            if rel:
                os.close(fd)


def materialize(ws: Workspace, res: Resolved, dest: str | None, *,
                purpose: str = "materialize") -> Materialized:
    """Write version ``res`` into ``dest`` (or a new directory under .clawback/previews/) as
    the module docstring says; VerificationFailed (nothing left behind) when a blob does not
    match the manifest or the written tree does not read back as the manifest says."""
    res.require_trusted("materialised")
    snap = res.snapshot
    if any(res.rel(f.path) == MARKER for f in snap.files):
        raise Conflict(f"{res.tag} has a file named {MARKER} at its top", "materialise it by "
                       "hand: git archive " + snap.git_commit[:12] + " " + snap.location)
    pid = secrets.token_hex(16)
    name = f"{res.task_id}-v{res.version}-{clock.format(pattern='%Y%m%dT%H%M%SZ')}-{pid[:6]}"
    path, ours = _destination(ws, dest, name)
    item = {"id": pid, "path": str(path), "task": res.task_id, "version": res.version,
            "tag": res.tag, "created_at": clock.format(), "made": ours, "purpose": purpose,
            "pid": os.getpid()}
    record(ws, item, {res.rel(f.path): (f.mode, f.checksum) for f in snap.files})
    try:
        with _top(path, create=ours, empty=not ours) as top:
            put_marker(top, item)
            count, size = _write(ws, res, top)
            check = _check_fd(top, res)
        if not check.ok:
            raise VerificationFailed(f"the preview of {res.tag} does not match its manifest "
                                     f"({check.detail})", "run `clawback verify-snapshot`")
    except BaseException:
        remove(ws, pid)
        raise
    return Materialized(pid, path, res.task_id, res.version, res.tag, count, size,
                        dest is not None)


@contextmanager
def _top(path: Path, *, create: bool = False, empty: bool = False) -> Iterator[int]:
    """A descriptor of the directory ``path`` (made first when ``create``), reached from ``/``
    without following a link and made and opened relative to its parent's descriptor: a
    component swapped for a link after ``_destination`` looked is never written through
    (Conflict, nothing written there). ``empty``: the existing DIR must still be empty."""
    try:
        with safefs.open_parent(path) as (pfd, name):
            if create:
                os.mkdir(name, 0o755, dir_fd=pfd)
            fd = os.open(name, DIR_FLAGS, dir_fd=pfd)
    except safefs.Unsafe as exc:
        raise _changed(path, f"/{exc.where} is {exc.why}") from None
    except OSError as exc:
        if isinstance(exc, FileExistsError | FileNotFoundError | NotADirectoryError) or \
                exc.errno == errno.ELOOP:
            raise _changed(path, exc.strerror or type(exc).__name__) from None
        raise
    try:
        if empty and os.listdir(fd):
            raise _changed(path, "it is no longer empty")
        yield fd
    finally:
        os.close(fd)


def _changed(path: Path, what: str) -> Conflict:
    return Conflict(f"{shown(str(path))} changed while the preview was being made ({what}): "
                    "nothing was written through it",
                    "check what else is changing that path, then retry with a new or empty "
                    "directory")


def _write(ws: Workspace, res: Resolved, top: int) -> tuple[int, int]:
    snap = res.snapshot
    tree = ws.git.ls_tree(snap.git_commit, snap.location)
    by_oid: dict[str, list] = {}
    for f in snap.files:
        found = tree.get(f.path)
        if found is None or found[0] != f.mode:
            raise VerificationFailed(f"{shown(f.path)} is not at {snap.git_commit[:12]} as the "
                                     "manifest records it", "run `clawback verify-snapshot`")
        by_oid.setdefault(found[1], []).append(f)
    writer = _Writer(top)
    size = 0
    try:
        for oid, data in ws.git.read_blobs(by_oid):
            digest = sha256_hex(data)
            for f in by_oid[oid]:
                if digest != f.checksum:
                    raise VerificationFailed(f"{shown(f.path)}: git's content does not match "
                                             "the manifest's sha256", "run `clawback verify-snapshot`")
                writer.put(res.rel(f.path), data, f.mode)
                size += len(data)
    finally:
        writer.close()
    return len(snap.files), size


# -- reading back --------------------------------------------------------------------------
def check_tree(path: Path, res: Resolved) -> TreeCheck:
    """Level 1 of a preview: every manifest file in the tree with its sha256 and kind (an
    executable bit where the mode says 100755), nothing missing, nothing extra (the marker
    aside), read without following a link."""
    with _top(path) as top:
        return _check_fd(top, res)


def _check_fd(top: int, res: Resolved) -> TreeCheck:
    found: dict[str, tuple[str, str]] = {}
    _walk(top, "", found)
    found.pop(MARKER, None)
    recorded = {res.rel(f.path): f for f in res.snapshot.files}
    problems = [f"missing {shown(p)}" for p in sorted(set(recorded) - set(found))]
    problems += [f"extra {shown(p)}" for p in sorted(set(found) - set(recorded))]
    for rel in sorted(set(recorded) & set(found)):
        mode, digest = found[rel]
        if (mode, digest) != (recorded[rel].mode, recorded[rel].checksum):
            problems.append(f"changed {shown(rel)}")
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        return TreeCheck(False, "; ".join(problems[:5]) + more, len(recorded))
    return TreeCheck(True, f"{len(recorded)} files match", len(recorded))


def _walk(fd: int, prefix: str, out: dict[str, tuple[str, str]]) -> None:
    with os.scandir(fd) as it:
        entries = list(it)
    for e in entries:
        rel = prefix + e.name
        st = e.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            target = os.fsencode(os.readlink(e.name, dir_fd=fd))
            out[rel] = ("120000", sha256_hex(target))
        elif stat.S_ISDIR(st.st_mode):
            sub = os.open(e.name, DIR_FLAGS, dir_fd=fd)
            try:
                _walk(sub, rel + "/", out)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            ffd = os.open(e.name, READ_FLAGS, dir_fd=fd)
            try:
                digest = hashlib.sha256()
                while chunk := os.read(ffd, 1 << 20):
                    digest.update(chunk)
            finally:
                os.close(ffd)
            mode = "100755" if st.st_mode & 0o100 else "100644"
            out[rel] = (mode, "sha256:" + digest.hexdigest())
        else:
            out[rel] = ("special", "")


