"""``clawback gc``: remove the task environments no recent snapshot uses (docs/design.md, "gc").

Environments live in ``.clawback/envs/<TASK>/<digest16>/`` (tasks_lib/deps/envs.py), one per
lock, kept so a rollback to a version seen before switches in well under a second. They pile
up; this removes the ones nothing needs. Kept, per active task:

- the environments of the task's newest ``keep`` snapshot versions (``snapshots[]`` of its
  registry entry, by version number), each found by its manifest's lock digest;
- the one of its current version, and the one ``current`` points at;
- the one of every version marked stable (the targets of an automatic rollback);
- the one of the version its running process was started on (its pidfile), and any environment
  a process on this machine runs from, has open or mapped;
- a directory without a complete marker (a build in progress or interrupted: ensure_env
  rebuilds it), a symlink, anything but a real directory, anything holding a mount point.

Nothing outside ``envs/<TASK>/`` of an active task is touched: deleted tasks, task folders not in
the registry and every other file are left alone (and listed). When a kept version's manifest
cannot be read, none of that task's environments is removed (its lock is unknown). A removal
renames the directory to ``.gc-…`` first (atomic: a half-removed environment is never reused),
then deletes it without following a symlink (``shutil.rmtree`` on a descriptor); a ``.gc-…``
left by a killed gc is removed by the next one.

Preview trees are ``preview --cleanup``'s (docs/design.md, "gc"): only environments here. Plain
Python, no Prefect: nothing here is worth a flow run (no retries, no undo: environments are
rebuilt from the locks), and a cleanup must work when the orchestrator is down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

from tasks_lib.core import ids, safefs
from tasks_lib.core.errors import BadInput, ClawbackError, Conflict, OperationFailed
from tasks_lib.core.workspace import Task, TaskScan, Workspace
from tasks_lib.deps.envs import CURRENT, env_root, link_target, read_marker
from tasks_lib.runtime import process
from tasks_lib.state import recovery
from tasks_lib.state.audit import AuditLog, Stopwatch
from tasks_lib.state.oplocks import task_lock, workspace_lock
from tasks_lib.verify_snapshot import load_snapshot

DEFAULT_KEEP = 5
MAX_KEEP = 10_000
LEFTOVER = ".gc-"


@dataclass(frozen=True)
class EnvDir:
    task_id: str
    path: Path
    bytes: int
    why: str            # why it is kept, or why it goes


@dataclass(frozen=True)
class GcResult:
    keep: int
    dry_run: bool
    removed: tuple[EnvDir, ...]    # (with dry_run: what would be removed)
    kept: tuple[EnvDir, ...]
    skipped: tuple[str, ...]       # what gc left alone without looking inside, and why

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.removed)

    def as_dict(self) -> dict[str, object]:
        """The --json document's result (with the total of ``bytes``)."""
        return {"keep": self.keep, "dry_run": self.dry_run, "bytes": self.bytes,
                "removed": list(self.removed), "kept": list(self.kept),
                "skipped": list(self.skipped)}


def keep_count(value: object) -> int:
    """``--keep``: a whole number from 0 to MAX_KEEP (BadInput otherwise)."""
    text = str(value)
    if not (0 < len(text) <= len(str(MAX_KEEP)) and text.isascii() and text.isdigit()) \
            or int(text) > MAX_KEEP:
        raise BadInput(f"--keep must be a whole number from 0 to {MAX_KEEP}, got {ids.shown(text)}",
                       f"e.g. --keep {DEFAULT_KEEP}: the environments of each task's "
                       f"{DEFAULT_KEEP} newest versions stay (and the current and stable ones)")
    return int(text)


def collect(ws: Workspace, keep: object = DEFAULT_KEEP, *, task_id: str | None = None,
            dry_run: bool = False) -> GcResult:
    """Remove (with ``dry_run``: list) what no kept version needs, holding every task's lock and
    the workspace lock; audited unless ``dry_run``."""
    count = keep_count(keep)
    scan = ws.scan()
    if task_id is not None:
        tasks = [ws.task(task_id)]  # unknown, hostile or inactive: exit 2
    else:
        tasks = [t for t in scan.tasks if t.active]
    if dry_run:
        return _plan(ws, tasks, scan, count, dry_run=True)
    clock = Stopwatch()
    audit = AuditLog(ws.ensure_state_dir())
    with ExitStack() as held:
        # the workspace lock first and without waiting: held while waiting, the task locks
        # would refuse every other task's operation (an automatic rollback among them)
        held.enter_context(workspace_lock(ws.state_dir, "gc", timeout=0))
        for task in sorted(tasks, key=lambda t: t.id):
            held.enter_context(task_lock(ws.state_dir, task.id, "gc"))
        left = recovery.left_behind(ws.state_dir)
        if left:
            raise Conflict(f"an operation's journal is still waiting for its undo ({left[0].path.name}; "
                           "kept .failed.json journals too): the undo may need an environment",
                           "run `clawback status` (it undoes an interrupted one; a failed one "
                           "names what to do), then gc again")
        result = _plan(ws, tasks, scan, count, dry_run=False)
        done: list[EnvDir] = []
        try:
            for env in result.removed:
                _remove(env.path)
                done.append(env)
        except OSError as exc:
            audit.append("gc", task=task_id, result="failed", duration_s=clock.elapsed,
                         keep=count, removed=[_rel(ws, e.path) for e in done],
                         error=f"{exc.strerror or exc}")
            raise OperationFailed(f"gc could not remove {result.removed[len(done)].path} "
                                  f"({exc.strerror or exc}); removed {len(done)} before it",
                                  step="remove", hint="check the permissions under "
                                  f"{ws.state_dir / 'envs'}, then gc again") from None
        audit.append("gc", task=task_id, duration_s=clock.elapsed, keep=count,
                     removed=[_rel(ws, e.path) for e in done], bytes=result.bytes)
    return result


def _plan(ws: Workspace, tasks: list[Task], scan: TaskScan, count: int, *, dry_run: bool) -> GcResult:
    removed: list[EnvDir] = []
    kept: list[EnvDir] = []
    skipped = [f"{b.id}: its registry entry cannot be used ({b.error})" for b in scan.broken]
    envs = ws.state_dir / "envs"
    active = {t.id for t in scan.tasks if t.active}
    try:
        names = sorted(os.listdir(envs))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    skipped += [f"envs/{n}: not an active task of the registry" for n in names if n not in active]
    busy = _in_use(envs)
    for task in tasks:
        root = env_root(ws.state_dir, task.id)  # (Conflict when envs/ or envs/<TASK> is a link)
        if not root.is_dir():
            continue
        wanted, problem = _wanted(ws, task, count)
        current = link_target(root)
        for child in sorted(root.iterdir()):
            why = _keep_reason(child, wanted, current, busy, problem)
            if why is None:
                continue  # not an environment: `current`, a temporary file
            entry = EnvDir(task.id, child, _size(child), why or _goes(child))
            (kept if why else removed).append(entry)
    return GcResult(count, dry_run, tuple(removed), tuple(kept), tuple(skipped))


def _wanted(ws: Workspace, task: Task, count: int) -> tuple[dict[str, str], str | None]:
    """The digest prefixes (16 hex) the kept versions' environments have, with the reason; and
    what makes the set unknown (a kept version whose manifest cannot be read), if anything."""
    entry = task.entry
    records = [r for r in entry.get("snapshots") or [] if isinstance(r, dict)]
    known = []
    for version in dict.fromkeys(str(r.get("version")) for r in records):
        try:
            known.append(ids.Version.parse(version))
        except ClawbackError:
            continue
    reasons: dict[str, str] = {}
    for v in sorted(known, reverse=True)[:count]:
        reasons.setdefault(str(v), f"one of the {count} newest versions")
    for r in records:  # (a stable mark counts even on a quarantined version)
        if r.get("stable") and r.get("version") is not None:
            reasons.setdefault(str(r.get("version")), "a stable version")
    if task.version:
        reasons.setdefault(task.version, "the current version")
    running = _running_version(ws, task)
    if running:
        reasons.setdefault(running, "the version its running process runs")
    wanted: dict[str, str] = {}
    for version, why in reasons.items():
        try:
            snap = load_snapshot(ws, task.id, version)[1].snapshot
        except ClawbackError as exc:
            if version == task.version and not any(str(r.get("version")) == version
                                                   for r in records):
                continue  # never snapshotted: `current` keeps its environment
            return {}, f"the manifest of {task.id} {version} ({why}) cannot be read: {exc.message}"
        if snap.python_mode == "venv":
            wanted.setdefault(snap.python_lock_digest.split(":", 1)[-1][:16],
                              f"{why} ({version})")
    return wanted, None


def _running_version(ws: Workspace, task: Task) -> str | None:
    """The version clawback started the task's running process on (its pidfile says)."""
    if task.settings.run.type != "process" or not process.run_state(ws, task).running:
        return None
    data = safefs.read_regular(process.pidfile(ws, task), 1 << 16)
    try:
        found = json.loads(data or b"").get("version")
    except (ValueError, AttributeError):
        return None
    return str(found) if found else None


def _keep_reason(child: Path, wanted: dict[str, str], current: Path | None,
                 busy: dict[str, int], problem: str | None) -> str | None:
    """Why ``child`` stays ("" when it goes), None when it is no environment at all."""
    name = child.name
    if name == CURRENT or (name.startswith(".") and not name.startswith(LEFTOVER)):
        return None
    st = os.lstat(child)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory (left alone)"
    real = os.path.realpath(child)
    if real in busy:
        return f"in use by pid {busy[real]}"
    if safefs.mount_points_under(child):
        return "holds a mount point (left alone)"
    if name.startswith(LEFTOVER):
        return ""
    if current is not None and os.path.normpath(child) == os.path.normpath(current):
        return "`current` points at it"
    if problem:
        return problem
    marker = read_marker(child)
    if marker is None:
        return "incomplete (a build in progress or interrupted)"
    digest = str(marker.get("lock_digest", "")).split(":", 1)[-1][:16]
    for key in (name, digest):
        if key in wanted:
            return wanted[key]
    return ""


def _goes(child: Path) -> str:
    if child.name.startswith(LEFTOVER):
        return "left by an interrupted gc"
    return "no kept version uses it"


def _in_use(envs: Path) -> dict[str, int]:
    """Environment directories (real paths) under ``envs`` some process here runs from, works
    in, has open or mapped, with one such pid. Processes we may not inspect are passed over."""
    base = os.path.realpath(envs)
    found: dict[str, int] = {}

    def note(path: str | None, pid: int) -> None:
        if not path:
            return
        real = os.path.realpath(path)
        rel = os.path.relpath(real, base)
        parts = rel.split(os.sep)
        if not rel.startswith("..") and len(parts) >= 2:
            found.setdefault(os.path.join(base, parts[0], parts[1]), pid)

    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "environ"]):
        try:
            info = proc.info
            cmd = info.get("cmdline") or []
            environ = info.get("environ") or {}
            if cmd:  # a venv's bin/python is a link to the base interpreter: its folder counts
                note(_program_dir(cmd[0], info.get("cwd"), environ.get("PATH")), proc.pid)
            note(info.get("cwd"), proc.pid)
            note(environ.get("VIRTUAL_ENV"), proc.pid)
            for f in proc.open_files():
                note(f.path, proc.pid)
            for m in proc.memory_maps(grouped=True):
                note(m.path if m.path.startswith("/") else None, proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _program_dir(program: str, cwd: str | None, path: str | None) -> str | None:
    """The directory ``program`` (a process's argv[0]) was run from, as that process resolved
    it: relative to its own working directory, or found on its own PATH."""
    if "/" in program:
        return os.path.dirname(os.path.join(cwd or "/", program))
    for folder in (path or "").split(os.pathsep):
        if folder.startswith("/") and os.access(os.path.join(folder, program), os.X_OK):
            return folder
    return None


def _size(path: Path) -> int:
    """Bytes of the files and links under ``path`` (each inode once), never following a link."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):  # a link (or a file) is sized as itself, never followed
        return st.st_size
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _remove(path: Path) -> None:
    """Rename into a ``.gc-`` name (a half-removed environment is never reused), then delete
    the tree on descriptors, never following a link."""
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux has it
        raise OSError(f"this platform cannot remove {path} safely")
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} is no longer a directory")
    doomed = path
    if not path.name.startswith(LEFTOVER):
        doomed = path.with_name(f"{LEFTOVER}{path.name}-{secrets.token_hex(4)}")
        os.rename(path, doomed)
    shutil.rmtree(doomed)


def _rel(ws: Workspace, path: Path) -> str:
    return os.path.relpath(path, ws.state_dir)
