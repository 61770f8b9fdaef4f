"""Back up and restore one task's versioned files (never its state, never another task).

A backup is a commit of the task's current working-tree files (tracked, untracked and not
ignored; state paths excluded) on top of HEAD, kept under ``refs/clawback/backups/<task>/<time>``:
a person finds it with ``git for-each-ref refs/clawback`` and restores it with
``git restore --source=<ref> -- tasks/T01``; a clone with ``--mirror`` carries it.

A restore writes the task's versioned files of a commit into the working tree byte for byte (mode
and symlinks included) and removes the versioned files that commit does not have. HEAD, the
index and everything outside the task's directory are left alone; state paths are never
touched. Every read and write goes through tasks_lib/core/safefs.py, so nothing is ever read or
written through a symlink on the way: a versioned symlink where the target has a directory is
removed (it is a versioned file of the task) and a real directory made in its place.

Which files are the task's (:meth:`Scope.inventory`) is decided without following links too: an
index entry behind a symlinked directory is not a live file (it is staged for removal), a
submodule or a nested repository is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput
from tasks_lib.gitops.repo import Git
from tasks_lib.runtime.statepaths import StatePaths

BACKUP_REFS = "refs/clawback/backups"
GITLINK = "160000"
SYMLINK = "120000"


@dataclass(frozen=True)
class Backup:
    ref: str
    commit: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class TreeChange:
    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.changed or self.added or self.removed)


@dataclass(frozen=True)
class Inventory:
    """The task's versioned files as they are now."""

    live: dict[str, str]                     # path -> "file" | "link", present in the tree
    gone: tuple[str, ...]                    # index entries that are no live file any more
    index: dict[str, tuple[str, str, str]]   # path -> (mode, object id, stage)


def submodule_error(path: str, location: str) -> BadInput:
    where = "is" if path.rstrip("/") == location else f"contains one at {path.rstrip('/')}, so it is not"
    return BadInput(f"{location} {where} a git submodule or a nested git repository"
                    + ("" if where == "is" else " a plain directory of the workspace"),
                    "clawback versions a task's files in the workspace repository itself: make "
                    "them plain files of the workspace (git rm --cached the submodule, remove its "
                    ".git), or move the nested repository out of the task directory")


@dataclass(frozen=True)
class Scope:
    """Which files of a workspace a restore may touch: those under ``location`` that are not
    runtime state under any of ``state``'s rule sets."""

    root: Path
    location: str
    state: StatePaths = StatePaths()

    def owns(self, repo_path: str) -> bool:
        if not repo_path.startswith(self.location + "/"):
            return False
        return not self.state.matches(repo_path[len(self.location) + 1:])

    def inventory(self, git: Git, also: Iterable[str] = ()) -> Inventory:
        """The task's live versioned files and its stale index entries, never following a
        symlink. ``also``: paths a version being restored (or backed up for) has, counted even
        where .gitignore ignores them now, so such a file is backed up, compared and put back
        like any other instead of being overwritten unseen. BadInput for a submodule, a nested
        repository or an unmerged path."""
        where = safefs.check_dir(self.root, self.location)
        if where not in ("dir", "missing"):
            raise BadInput(f"{self.location} is not a plain directory of the workspace ({where})",
                           "clawback reads and writes a task only through real directories")
        above = safefs.mount_over(self.root, self.location)
        if above is not None and above != self.location:
            raise BadInput(f"{above} is a mount point, and {self.location} lies inside it",
                           "clawback never reads or writes a task through a mount point (it "
                           "can show any directory there): move the mount out of the "
                           "workspace, or the task out of the mounted directory")
        for mount in safefs.mount_points_under(self.root / self.location):
            rel = os.path.relpath(mount, os.path.realpath(self.root))
            if rel == self.location or self.owns(rel + "/x") or self.owns(rel):
                raise BadInput(f"{rel} is a mount point inside {self.location}",
                               "clawback never reads or writes a task through a mount point: make "
                               "that directory runtime state (clawback.state_paths) or move the "
                               "mount out of the task directory")
        index = git.index_entries(self.location)
        others = git.untracked(self.location)
        for path, (mode, _, stage) in index.items():
            if mode == GITLINK:
                raise submodule_error(path, self.location)
            if stage != "0" and self.owns(path):
                raise BadInput(f"{path} is unmerged (a merge conflict)",
                               "resolve the conflict (git add or git checkout) and retry")
        for path in others:
            if path.endswith("/"):
                raise submodule_error(path, self.location)
        nested = safefs.entry(self.root, f"{self.location}/.git", read=False).kind
        if nested != "missing":
            raise submodule_error(self.location + "/", self.location)
        live: dict[str, str] = {}
        gone: list[str] = []
        for path in sorted({*index, *others, *also}):
            if not self.owns(path):
                continue
            kind = safefs.entry(self.root, path, read=False).kind
            if kind == "behind-mount":
                raise BadInput(f"{path} lies behind a mount point inside {self.location}",
                               "clawback never reads or writes a task through a mount point: make "
                               "that directory runtime state (clawback.state_paths) or move the "
                               "mount out of the task directory")
            if kind in ("file", "link"):
                live[path] = kind
            elif path in index:
                gone.append(path)  # deleted, behind a symlinked directory, or now a directory
        return Inventory(live, tuple(gone), index)

    def live_files(self, git: Git, also: Iterable[str] = ()) -> list[str]:
        """The task's versioned files present in the working tree now."""
        return list(self.inventory(git, also).live)


def _stamp() -> str:
    return clock.format(pattern=clock.COMPACT)


def backup(git: Git, scope: Scope, task_id: str, message: str, scratch: Path,
           extra: Iterable[str] = (), also: Iterable[str] = ()) -> Backup:
    """Commit the task's current versioned files (and the workspace files in ``extra``, e.g. the
    registry; ``also`` as for ``Scope.inventory``) on top of HEAD under a new backup ref."""
    inv = scope.inventory(git, also)
    head = git.head()
    at_head = git.ls_tree(head, scope.location) if head else {}
    gone = [p for p in at_head if scope.owns(p) and p not in inv.live]
    files = [*inv.live, *(p for p in extra if p not in inv.live)]
    commit = commit_tree_of(git, files, [*gone, *inv.gone], message, scratch)
    ref = f"{BACKUP_REFS}/{task_id}/{_stamp()}"
    git.run("update-ref", ref, commit, git.zero_oid())
    return Backup(ref, commit, tuple(inv.live))


def commit_tree_of(git: Git, present: list[str], absent: list[str], message: str,
                   scratch: Path) -> str:
    """A commit on top of HEAD whose tree is HEAD's with ``present`` taken from the working tree
    and ``absent`` removed; HEAD and the real index are not touched."""
    head = git.head()
    scratch.mkdir(parents=True, exist_ok=True)
    index = scratch / f"backup-index.{_stamp()}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        real_index = git.index_path()
        if real_index.exists():  # its stat cache spares rehashing files that did not change
            safefs.replace_file(index, real_index.read_bytes())
        else:
            git.run("read-tree", *([head] if head else ["--empty"]), env=env)
        if absent:
            git.run("update-index", "--force-remove", "-z", "--stdin", input=_nul(absent), env=env)
        if present:
            git.run("update-index", "--add", "--remove", "--replace", "-z", "--stdin",
                    input=_nul(present), env=env)
        tree = git.out("write-tree", env=env).strip()
    finally:
        index.unlink(missing_ok=True)
    parents = ["-p", head] if head else []
    return git.out("commit-tree", tree, *parents, "-F", "-", input=message.encode(),
                   env=git.identity_env()).strip()


def _nul(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


def target_files(git: Git, scope: Scope, commit: str) -> dict[str, tuple[str, str]]:
    found = {p: mo for p, mo in git.ls_tree(commit, scope.location).items() if scope.owns(p)}
    for path, (mode, _) in found.items():
        if mode == GITLINK:
            raise submodule_error(path, scope.location)
    return found


def plan_restore(git: Git, scope: Scope, commit: str) -> TreeChange:
    """What ``restore_tree`` would change, without changing anything (for --dry-run)."""
    target = target_files(git, scope, commit)
    inv = scope.inventory(git, target)
    live = set(inv.live)
    changed = [p for p, _ in _differing(git, scope, target, inv) if p in live]
    return TreeChange(tuple(sorted(changed)), tuple(sorted(set(target) - live)),
                      tuple(sorted(live - set(target))))


def restore_tree(git: Git, scope: Scope, commit: str, also: Iterable[str] = ()) -> TreeChange:
    """Make the task's versioned files exactly those of ``commit``: first the files it does not
    have are removed (so a versioned symlink standing where it has a directory goes), then every
    differing file is written; never through a symlink (safefs). ``also``: paths another
    version involved has (an undo: what the rollback wrote), removed too where ignored now."""
    target = target_files(git, scope, commit)
    inv = scope.inventory(git, [*target, *also])
    live = set(inv.live)
    removed = sorted(live - set(target))
    for path in removed:
        safefs.remove(scope.root, path)
        safefs.prune_empty_dirs(scope.root, path, scope.location)
    written: list[str] = []
    for path, content in _differing(git, scope, target, inv):
        if target[path][0] == SYMLINK:
            safefs.write_link(scope.root, path, content)
        else:
            safefs.write_file(scope.root, path, content, executable=target[path][0] == "100755")
        written.append(path)
    return TreeChange(tuple(sorted(p for p in written if p in live)),
                      tuple(sorted(p for p in written if p not in live)), tuple(removed))


def newer_files(git: Git, scope: Scope, *commits: str) -> list[str]:
    """The task's live files whose content is that of none of ``commits`` (what an undo would
    overwrite that nobody recorded: work done after a crash)."""
    known: dict[str, set[str]] = {}
    for commit in commits:
        for path, (_, oid) in target_files(git, scope, commit).items():
            known.setdefault(path, set()).add(oid)
    newer = []
    for path in scope.inventory(git, known).live:
        found = safefs.entry(scope.root, path)
        if found.data is None or git.blob_id(found.data) not in known.get(path, ()):
            newer.append(path)
    return newer


def _differing(git: Git, scope: Scope, target: dict[str, tuple[str, str]],
               inv: Inventory) -> Iterator[tuple[str, bytes]]:
    """(path, git content) for every target file whose working copy differs (content or mode).

    A file whose index entry already has the target's blob and mode, and which git's stat check
    finds unmodified against the index, is the same: it is not read at all."""
    same = _clean_in_index(git, scope, target, inv)
    by_oid: dict[str, list[str]] = {}
    for path, (_, oid) in target.items():
        if path not in same:
            by_oid.setdefault(oid, []).append(path)
    for oid, data in git.read_blobs(by_oid):
        for path in by_oid[oid]:
            if not _matches(safefs.entry(scope.root, path), data, target[path][0]):
                yield path, data


def _clean_in_index(git: Git, scope: Scope, target: dict[str, tuple[str, str]],
                    inv: Inventory) -> set[str]:
    staged = {p: (mode, oid) for p, (mode, oid, stage) in inv.index.items() if stage == "0"}
    # settle racy stat entries of the task's paths only (update-index --refresh would lstat
    # every file of every task); fails harmlessly when the task has no file in the index yet
    git.run("add", "--refresh", "--", scope.location, check=False)
    dirty = git.run("diff-files", "--name-only", "-z", "--", scope.location).stdout
    modified = {p.decode("utf-8", "surrogateescape") for p in dirty.split(b"\0") if p}
    return {p for p, mo in target.items()
            if staged.get(p) == mo and p not in modified and p in inv.live}


def _matches(found: safefs.Entry, data: bytes, mode: str) -> bool:
    if mode == SYMLINK:
        return found.kind == "link" and found.data == data
    if found.kind != "file" or found.executable != (mode == "100755"):
        return False
    return found.data == data
