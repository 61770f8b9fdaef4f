"""One side of a diff: a stored version (tag + verified manifest) or ``working``, the live tree.

A version's files are its manifest's (state excluded when it was made), their object ids read
with one ``git ls-tree`` of its commit (``Git.ls_tree``); a manifest whose digest does not match,
or whose tag points elsewhere, is refused (exit 1), never compared. ``working`` is what a
snapshot would take now (tracked + untracked not ignored, minus state), read the way git's own
``status`` does it: the index's object id for every entry ``git diff-files`` finds unmodified by
its stat check, the content read (never through a symlink: tasks_lib/core/safefs.py) only for
the others and the untracked files. Nothing is written: no ``update-index --refresh``, no index
lock. docs/design.md, "Diff".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core.errors import BadInput, ClawbackError, VerificationFailed
from tasks_lib.core.workspace import Task, Workspace, committed_state
from tasks_lib.formats import config, registry
from tasks_lib.formats.manifest import Snapshot
from tasks_lib.gitops.repo import Git
from tasks_lib.gitops.restore import GITLINK, SYMLINK, submodule_error
from tasks_lib.runtime.statepaths import StatePaths
from tasks_lib.verify_snapshot import load_snapshot

WORKING = "working"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class Blob:
    mode: str                 # 100644, 100755, 120000 (a symlink: its target is the content)
    oid: str                  # git's object id of the content
    data: bytes | None = None  # the content, when it was read already (the working tree)


@dataclass(frozen=True)
class Side:
    label: str                      # a version, or "working"
    tag: str | None                 # the version's tag (None for working)
    commit: str | None
    location: str
    files: dict[str, Blob]          # task-relative path -> content (working: state paths that
                                    # are clean in the index too, dropped by the comparison)
    state: StatePaths               # what this side treats as runtime state
    config_file: str                # task-relative
    entry: dict[str, Any]           # the registry entry without history keys
    runtime: dict[str, Any]
    python: str
    env_names: tuple[str, ...] | None   # None: the config does not parse
    packages: tuple[str, ...] | None    # the exact lock; None: not locked yet (working)
    snapshot: Snapshot | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    def path(self, rel: str) -> str:
        return f"{self.location}/{rel}" if self.location else rel


def runtime_of(task: Task) -> dict[str, Any]:
    """The runtime settings a snapshot records (its manifest's ``runtime``)."""
    found = {k: v for k, v in task.settings.as_dict().items()
             if k not in ("environment_variables", "state_paths")}
    found["entry_point"] = task.entry_point
    return found


def definition(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in registry.HISTORY_KEYS}


# -- a version -------------------------------------------------------------------------------
def version_side(ws: Workspace, task_id: str, version: str) -> Side:
    """A stored version, refused (VerificationFailed, exit 1) unless its manifest is intact,
    names this tag and the tag points at the recorded commit; NotFound (exit 2) for an unknown
    version, naming the task's versions."""
    tag, parsed = load_snapshot(ws, task_id, version)
    snap = parsed.snapshot
    hint = f"run `clawback verify-snapshot --task {task_id} --version {snap.version}` for the details"
    if not parsed.intact:
        raise VerificationFailed(f"the manifest of {tag} does not match its digest (edited or "
                                 "corrupted): it cannot be compared", hint)
    if (snap.task_id, snap.git_tag) != (task_id, tag):
        raise VerificationFailed(f"the manifest of {tag} is the manifest of {snap.git_tag}", hint)
    git = ws.git
    if git.rev(f"refs/tags/{tag}^{{commit}}") != snap.git_commit:
        raise VerificationFailed(f"{tag} does not point at the commit its manifest records", hint)
    tree = git.ls_tree(snap.git_commit, snap.location)
    files: dict[str, Blob] = {}
    prefix = len(snap.location) + 1 if snap.location else 0
    for f in snap.files:
        found = tree.get(f.path)
        if found is None or found[0] != f.mode:
            raise VerificationFailed(f"{tag}: {f.path!r} is not at its commit as the manifest "
                                     "records it", hint)
        files[f.path[prefix:]] = Blob(f.mode, found[1])
    entry = dict(snap.registry_entry)
    cfg = entry.get("configuration_file", "config.yaml")
    return Side(label=snap.version, tag=tag, commit=snap.git_commit, location=snap.location,
                files=files, state=StatePaths.recorded(snap.state_paths, snap.runtime),
                config_file=cfg if isinstance(cfg, str) else "config.yaml", entry=entry,
                runtime=dict(snap.runtime), python=snap.python_mode,
                env_names=tuple(snap.environment_variables), packages=snap.python_packages,
                snapshot=snap)


# -- the live tree ---------------------------------------------------------------------------
def working_side(ws: Workspace, task: Task) -> Side:
    """What a snapshot of ``task`` would take now, and its live registry entry and settings."""
    location = task.location or ""
    committed = committed_state(ws, task.id)
    state = task.state.union(committed).flattened() if committed else task.state
    files = _working_files(ws, location, state)
    entry = definition(task.entry)
    notes: list[str] = []
    env_names: tuple[str, ...] | None = None
    cfg = files.get(task.config_file)
    if cfg is not None and cfg.mode != SYMLINK:
        text = (cfg.data if cfg.data is not None else read_blob(ws.git, cfg.oid)).decode("utf-8", "replace")
        declared = [*task.settings.environment_variables,
                    *[n for n in task.entry.get("environment_variables") or [] if isinstance(n, str)]]
        try:
            env_names = tuple(config.env_var_names(config.load(text, task.config_path), text, declared))
        except ClawbackError as exc:
            notes.append(f"environment variable names unknown: {exc.message}")
    return Side(label=WORKING, tag=None, commit=None, location=location, files=files,
                state=state, config_file=task.config_file, entry=entry, runtime=runtime_of(task),
                python=task.settings.python, env_names=env_names, packages=None,
                notes=tuple(notes))


def _working_files(ws: Workspace, location: str, state: StatePaths) -> dict[str, Blob]:
    git, root = ws.git, ws.root
    where = safefs.check_dir(root, location)
    if where == "missing":
        return {}
    if where != "dir":
        raise BadInput(f"{location} is not a plain directory of the workspace ({where})",
                       "clawback reads a task only through real directories")
    if safefs.entry(root, f"{location}/.git", read=False).kind != "missing":
        raise submodule_error(location + "/", location)
    index = git.index_entries(location)
    untracked = git.untracked(location)
    dirty = _dirty(git, location)
    prefix = len(location) + 1
    files: dict[str, Blob] = {}

    def owned(path: str) -> bool:
        return path.startswith(location + "/") and not state.matches(path[prefix:])

    for path, (mode, oid, stage) in index.items():
        if mode == GITLINK:
            raise submodule_error(path, location)
        if path not in dirty and stage == "0":
            # state or not is judged later, for the paths that differ (the diff applies both
            # sides' rules): matching every clean entry would cost ~30 us each
            files[path[prefix:]] = Blob(mode, oid)
        elif not owned(path):
            continue
        elif stage != "0":
            raise BadInput(f"{path} is unmerged (a merge conflict)",
                           "resolve the conflict (git add or git checkout) and retry")
        elif (blob := _read_live(ws, path)) is not None:  # only what is not state is read
            files[path[prefix:]] = blob
    for path in untracked:
        if path.endswith("/"):
            raise submodule_error(path, location)
        if owned(path) and (blob := _read_live(ws, path)) is not None:
            files[path[prefix:]] = blob
    return files


def _dirty(git: Git, location: str) -> set[str]:
    """Index entries whose working copy git's stat check does not find unchanged (modified,
    deleted, behind a symlink now, or only touched): read-only, unlike ``update-index``."""
    raw = git.run("diff-files", "-z", "--name-only", "--", location).stdout
    return {p.decode("utf-8", "surrogateescape") for p in raw.split(b"\0") if p}


def _read_live(ws: Workspace, path: str) -> Blob | None:
    """The file or symlink at ``path`` as git would store it; None when it is gone, lies behind
    a symlink or is no file (what a snapshot would not take either)."""
    found = safefs.entry(ws.root, path)
    if found.kind == "behind-mount":
        raise BadInput(f"{path} lies behind a mount point",
                       "clawback never reads a task through a mount point: make that directory "
                       "runtime state (clawback.state_paths) or move the mount out of the task")
    if found.kind not in ("file", "link") or found.data is None:
        return None
    mode = SYMLINK if found.kind == "link" else ("100755" if found.executable else "100644")
    return Blob(mode, ws.git.blob_id(found.data), found.data)


def read_blob(git: Git, oid: str) -> bytes:
    return next(data for _, data in git.read_blobs([oid]))


def contents(git: Git, blobs: list[Blob]) -> dict[str, bytes]:
    """{object id: content} of ``blobs``, read from git in one pass where not known already."""
    known = {b.oid: b.data for b in blobs if b.data is not None}
    wanted = sorted({b.oid for b in blobs if b.oid not in known})
    known.update(git.read_blobs(wanted))
    return known  # type: ignore[return-value]
