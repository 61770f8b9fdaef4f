"""Back up and restore one task's versioned files (never its state, never another task).

A backup is a commit of the task's current working-tree files (tracked, untracked and not
ignored; state paths excluded) on top of HEAD, kept under ``refs/clawback/backups/<task>/<time>``:
a person finds it with ``git for-each-ref refs/clawback`` and restores it with
``git restore --source=<ref> -- tasks/T01``; a clone with ``--mirror`` carries it.

A restore writes the task's versioned files of a commit into the working tree byte for byte (mode
and symlinks included) and removes the versioned files that commit does not have. HEAD, the
index and everything outside the task's directory are left alone; state paths are never
touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tasks_lib.errors import OperationFailed
from tasks_lib.gitrepo import Git
from tasks_lib.settings import is_state_path

BACKUP_REFS = "refs/clawback/backups"


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
class Scope:
    """Which files of a workspace a restore may touch."""

    root: Path
    location: str
    state_paths: tuple[str, ...] = field(default_factory=tuple)

    def owns(self, repo_path: str) -> bool:
        if not repo_path.startswith(self.location + "/"):
            return False
        return not is_state_path(repo_path[len(self.location) + 1:], self.state_paths)

    def live_files(self, git: Git) -> list[str]:
        """The task's versioned files present in the working tree now."""
        found = []
        for path in git.ls_files(self.location):
            full = self.root / path
            if self.owns(path) and (full.is_symlink() or full.is_file()):
                found.append(path)
        return found


def backup(git: Git, scope: Scope, task_id: str, message: str, scratch: Path) -> Backup:
    files = scope.live_files(git)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    ref = f"{BACKUP_REFS}/{task_id}/{stamp}"
    head = git.head()
    scratch.mkdir(parents=True, exist_ok=True)
    index = scratch / f"backup-index.{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        real_index = git.index_path()
        if real_index.exists():  # its stat cache spares rehashing files that did not change
            shutil.copyfile(real_index, index)
        else:
            git.run("read-tree", *([head] if head else ["--empty"]), env=env)
        present = set(files)
        at_head = git.ls_tree(head, scope.location) if head else {}
        gone = [p for p in at_head if scope.owns(p) and p not in present]
        git.run("update-index", "--add", "--remove", "-z", "--stdin",
                input=b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in [*files, *gone]),
                env=env)
        tree = git.out("write-tree", env=env).strip()
    finally:
        index.unlink(missing_ok=True)
    parents = ["-p", head] if head else []
    commit = git.out("commit-tree", tree, *parents, "-F", "-", input=message.encode(),
                     env=git.identity_env()).strip()
    git.run("update-ref", ref, commit, git.zero_oid())
    return Backup(ref, commit, tuple(files))


def target_files(git: Git, scope: Scope, commit: str) -> dict[str, tuple[str, str]]:
    return {p: mo for p, mo in git.ls_tree(commit, scope.location).items() if scope.owns(p)}


def plan_restore(git: Git, scope: Scope, commit: str) -> TreeChange:
    """What ``restore_tree`` would change, without changing anything (for --dry-run)."""
    target = target_files(git, scope, commit)
    live = set(scope.live_files(git))
    changed = [p for p, content in _differing(git, scope, target) if p in live]
    return TreeChange(tuple(sorted(changed)), tuple(sorted(set(target) - live)),
                      tuple(sorted(live - set(target))))


def restore_tree(git: Git, scope: Scope, commit: str) -> TreeChange:
    """Make the task's versioned files exactly those of ``commit``."""
    target = target_files(git, scope, commit)
    live = set(scope.live_files(git))
    written: list[str] = []
    for path, content in _differing(git, scope, target):
        _write(scope.root / path, content, target[path][0])
        written.append(path)
    removed = sorted(live - set(target))
    for path in removed:
        (scope.root / path).unlink(missing_ok=True)
        _prune_empty_dirs(scope.root / path, scope.root / scope.location)
    return TreeChange(tuple(sorted(p for p in written if p in live)),
                      tuple(sorted(p for p in written if p not in live)), tuple(removed))


def _differing(git: Git, scope: Scope, target: dict[str, tuple[str, str]]):
    """(path, git content) for every target file whose working copy differs (content or mode).

    A file whose index entry already has the target's blob and mode, and which git's stat check
    finds unmodified against the index, is the same: it is not read at all."""
    same = _clean_in_index(git, scope, target)
    by_oid: dict[str, list[str]] = {}
    for path, (_, oid) in target.items():
        if path not in same:
            by_oid.setdefault(oid, []).append(path)
    for oid, data in git.read_blobs(by_oid):
        for path in by_oid[oid]:
            if not _matches(scope.root / path, data, target[path][0]):
                yield path, data


def _clean_in_index(git: Git, scope: Scope, target: dict[str, tuple[str, str]]) -> set[str]:
    staged: dict[str, tuple[str, str]] = {}
    raw = git.run("ls-files", "-s", "-z", "--", scope.location).stdout
    for rec in raw.split(b"\0"):
        if rec:
            meta, path = rec.split(b"\t", 1)
            mode, oid, stage = meta.decode().split(" ")
            if stage == "0":
                staged[path.decode("utf-8", "surrogateescape")] = (mode, oid)
    # settle racy stat entries of the task's paths only (update-index --refresh would lstat
    # every file of every task); fails harmlessly when the task has no file in the index yet
    git.run("add", "--refresh", "--", scope.location, check=False)
    dirty = git.run("diff-files", "--name-only", "-z", "--", scope.location).stdout
    modified = {p.decode("utf-8", "surrogateescape") for p in dirty.split(b"\0") if p}
    return {p for p, mo in target.items()
            if staged.get(p) == mo and p not in modified and (scope.root / p).exists()}


def _matches(path: Path, data: bytes, mode: str) -> bool:
    if mode == "120000":
        return path.is_symlink() and os.readlink(path).encode("utf-8", "surrogateescape") == data
    if path.is_symlink() or not path.is_file():
        return False
    executable = bool(path.stat().st_mode & 0o111)
    if executable != (mode == "100755"):
        return False
    return path.stat().st_size == len(data) and path.read_bytes() == data


def _write(path: Path, data: bytes, mode: str) -> None:
    if path.is_dir() and not path.is_symlink():
        raise OperationFailed(f"{path} is a directory where the version has a file",
                              step="restore files", hint="move the directory aside, then retry")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(_tmp_name(path.name))
    tmp.unlink(missing_ok=True)
    if mode == "120000":
        os.symlink(data.decode("utf-8", "surrogateescape"), tmp)
    else:
        tmp.write_bytes(data)
        tmp.chmod(0o755 if mode == "100755" else 0o644)
    tmp.replace(path)


def _tmp_name(name: str) -> str:
    """The temporary a file is written to before it is renamed over ``name``: next to it, and
    short enough for a name already at the file system's limit (NAME_MAX, 255 bytes)."""
    tmp = f".{name}.clawback-restore"
    if len(os.fsencode(tmp)) <= 255:
        return tmp
    return f".clawback-restore-{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"


def _prune_empty_dirs(path: Path, stop: Path) -> None:
    parent = path.parent
    while parent != stop and parent.is_relative_to(stop):
        try:
            parent.rmdir()  # only succeeds when empty: state and other files keep it
        except OSError:
            return
        parent = parent.parent
