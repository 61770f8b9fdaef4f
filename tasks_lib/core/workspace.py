"""The workspace: a git repository holding ``task_registry.json`` and ``tasks/<id>/``.

Tool state lives in ``<workspace>/.clawback/`` (git-ignored): locks, environments, audit log,
exported snapshots, scratch files. Layout in docs/design.md.

Task locations are taken as the registry writes them and used in one canonical form
(``./tasks/T01``, ``tasks//T01/`` and ``tasks/T01/.`` are ``tasks/T01``; the registry's text is
never rewritten). A location is refused (exit 2) when it is absolute, leaves the workspace, is
the workspace itself or tool state (``.git``, ``.clawback``), passes through a symlink or a file,
or lies inside (or is) another active task's location: a rollback of one would rewrite the
other. One task's malformed entry never takes the others down: :meth:`Workspace.scan` lists it
as a :class:`BrokenTask` beside the good ones, and only commands on that task fail.

One module because a task's location, its entry and the workspace's other locations are
checked together (a location is valid only against all the others): splitting the checks from
the scan would let one be called without the other.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tasks_lib.core import ids, safefs, settings
from tasks_lib.core.errors import BadInput, ClawbackError, Conflict, MalformedFile, NotFound
from tasks_lib.formats import registry
from tasks_lib.gitops.repo import Git
from tasks_lib.runtime.statepaths import StatePaths, valid_pattern

STATE_DIR = ".clawback"
# what clawback keeps under .clawback/ (docs/design.md, "State directory")
STATE_ENTRIES = ("locks", "tmp", "snapshots", "envs", "run", "reports", "journal", "verified",
                 "health", "prefect", "audit.jsonl", "notify-urls")
_RESERVED = (".git", STATE_DIR)


@dataclass(frozen=True)
class Task:
    """One registry entry, resolved against the workspace."""

    id: str
    version: str | None
    status: str
    location: str | None          # repo-relative posix path, e.g. "tasks/T01"
    config_file: str              # relative to location
    entry_point: str | None
    entry: dict[str, Any]
    settings: settings.TaskSettings

    @property
    def active(self) -> bool:
        """The registry's one rule (:func:`tasks_lib.formats.registry.is_active`)."""
        return registry.is_active({"status": self.status, "location": self.location})

    @property
    def config_path(self) -> str:
        return f"{self.location}/{self.config_file}"

    def rel(self, repo_path: str) -> str:
        """A repo-relative path as seen from the task directory."""
        return repo_path[len(self.location) + 1:] if self.location else repo_path

    @cached_property
    def state(self) -> StatePaths:
        """The runtime-state rules in force for the version the registry entry defines, with
        the rules kept from the versions it was rolled back from (tasks_lib/runtime/statepaths.py)."""
        return entry_state(self.entry, self.settings)

    def is_state(self, repo_path: str) -> bool:
        return self.state.matches(self.rel(repo_path))


@dataclass(frozen=True)
class BrokenTask:
    """A registry entry clawback cannot use as it stands (bad settings, location, id ...)."""

    id: str
    status: str
    version: str | None
    error: ClawbackError


@dataclass(frozen=True)
class TaskScan:
    """Every registry entry, in file order: the usable ones and the broken ones."""

    tasks: list[Task]
    broken: list[BrokenTask]


@dataclass(frozen=True)
class Workspace:
    root: Path
    # registry texts this object has parsed, by content: the many reads of one operation parse
    # each version of the file once, and a changed file is parsed again (never stale)
    registry_parses: registry.Parses = field(default_factory=registry.Parses, init=False,
                                             repr=False, compare=False)

    @classmethod
    def discover(cls, given: str | os.PathLike[str] | None = None) -> Workspace:
        """--workspace, else $CLAWBACK_WORKSPACE, else the git top level of the current directory."""
        raw = given or os.environ.get("CLAWBACK_WORKSPACE")
        start = Path(raw).expanduser() if raw else Path.cwd()
        if not start.is_dir():
            raise BadInput(f"workspace {start} is not a directory", "pass --workspace DIR")
        top = Git.toplevel(start)
        if top is None:
            raise BadInput(f"{start} is not inside a git repository",
                           "pass --workspace DIR of your workspace, or run `git init` there first")
        if raw and top.resolve() != start.resolve():
            raise BadInput(f"{start} is inside the git repository {top}, not its top level",
                           f"pass --workspace {top}")
        ws = cls(top.resolve())
        if ws.registry_path.is_symlink():
            raise BadInput(f"{ws.registry_path} is a symlink",
                           "make it a regular file of the workspace: git would version the link, "
                           "not the task definitions, and clawback rewrites it in place")
        if not ws.registry_path.is_file():
            raise BadInput(f"{ws.registry_path} not found",
                           "a workspace needs task_registry.json at its top level")
        return ws

    @cached_property
    def git(self) -> Git:
        """This workspace's git, one per Workspace: its object format and a hook's pinned
        variables are asked of git once, not once per use (a loop over 6,000 files calling
        ``ws.git.blob_id`` started a git process per file). It holds no open process."""
        return Git(self.root)

    @property
    def registry_path(self) -> Path:
        return self.root / registry.REGISTRY_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def ensure_state_dir(self) -> Path:
        self.check_state_dir()
        for sub in ("locks", "tmp", "snapshots", "envs", "run"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.check_state_dir()  # (made meanwhile by someone else: as links?)
        ignore = self.state_dir / ".gitignore"
        if not ignore.exists():
            safefs.replace_file(ignore, b"# clawback tool state: never committed\n*\n")
        return self.state_dir

    def check_state_dir(self) -> None:
        """Tool state stays tool state: ``.clawback/`` and what clawback writes under it may be
        links to another disk, never into the rest of the workspace (a task directory would
        then get, and commit, clawback's exports, reports, pidfiles or environments). Conflict
        (exit 3) otherwise."""
        root = os.path.realpath(self.root)
        state = os.path.realpath(self.state_dir)
        if state != os.path.join(root, STATE_DIR) and Path(state).is_relative_to(root):
            raise Conflict(f"{STATE_DIR} is a link into the workspace ({state})",
                           f"make {STATE_DIR} a real directory, or a link outside the workspace")
        for name in STATE_ENTRIES:
            entry = self.state_dir / name
            if not (entry.is_symlink() or entry.exists()):
                continue
            real = os.path.realpath(entry)
            if Path(real).is_relative_to(root) and not Path(real).is_relative_to(state):
                raise Conflict(f"{STATE_DIR}/{name} is a link into the workspace ({real}): "
                               "clawback's state would land among the versioned files",
                               "remove the link (or point it outside the workspace), then retry")

    def load_registry(self) -> registry.Registry:
        return registry.Registry.load(self.registry_path, self.registry_parses)

    def scan(self, reg: registry.Registry | None = None) -> TaskScan:
        """Every registry entry (deleted ones included), in file order; an entry that cannot be
        used is a BrokenTask carrying its error, and the others are unaffected by it."""
        reg = reg or self.load_registry()
        locations = _active_locations(reg)
        tasks: list[Task] = []
        broken: list[BrokenTask] = []
        for tid in reg.task_ids():
            entry = reg.entry(tid) or {}
            try:
                reg.check_entry(tid)
                tasks.append(self._task(tid, entry, locations))
            except ClawbackError as exc:
                ver = entry.get("version")
                broken.append(BrokenTask(str(tid), str(entry.get("status", "active")),
                                         str(ver) if ver is not None else None, exc))
        broken += [BrokenTask(label, "active", None, why) for label, why in reg.unusable_entries()]
        return TaskScan(tasks, broken)

    def tasks(self, reg: registry.Registry | None = None) -> list[Task]:
        """Every usable registry entry (deleted ones included), in file order; broken entries are
        left out (``scan`` lists them)."""
        return self.scan(reg).tasks

    def task(self, task_id: str, reg: registry.Registry | None = None, *,
             active: bool = True) -> Task:
        ids.task_id(task_id)
        reg = reg or self.load_registry()
        entry = reg.entry(task_id)
        if entry is None:
            known = ", ".join(t for t in reg.task_ids()[:20]) or "none"
            raise NotFound(f"unknown task {task_id}", f"tasks in the registry: {known}")
        reg.check_entry(task_id)
        task = self._task(task_id, entry, _active_locations(reg))
        if active and not task.active:
            why = "is deleted" if task.status == "deleted" else "has no location"
            raise BadInput(f"task {task_id} {why}; clawback never touches it",
                           "pick an active task (`clawback status` lists them)")
        return task

    def _task(self, task_id: str, entry: dict[str, Any],
              locations: dict[str, str | ClawbackError]) -> Task:
        status = str(entry.get("status", "active"))
        location = entry.get("location")
        if registry.is_active(entry):
            ids.task_id(task_id)
            canonical = locations.get(task_id)
            if isinstance(canonical, ClawbackError):
                raise canonical
            location = self._check_location(task_id, canonical or "", locations)
        config_file = entry.get("configuration_file", "config.yaml")
        if not isinstance(config_file, str) or not ids.safe_relative_path(config_file):
            raise MalformedFile(f"task_registry.json: task {task_id}: bad configuration_file",
                                "use a file name inside the task directory, e.g. config.yaml")
        entry_point = entry.get("entry_point")
        if entry_point is not None and (not isinstance(entry_point, str) or not ids.safe_relative_path(entry_point)):
            raise MalformedFile(f"task_registry.json: task {task_id}: bad entry_point",
                                "use a file inside the task directory, e.g. main.py")
        parsed = settings.parse(task_id, entry.get("clawback"))
        if isinstance(location, str):
            for pattern in parsed.state_paths:
                body = pattern.lstrip("!").lstrip("/")
                if body == location or body.startswith(location + "/"):
                    raise MalformedFile(
                        f"task_registry.json: task {task_id}: clawback.state_paths entry "
                        f"{pattern!r} repeats the task's location, so it matches nothing",
                        "state_paths are relative to the task directory: write "
                        f"{body[len(location):].lstrip('/') or '/'!r} (or /... to anchor it)")
        ver = entry.get("version")
        return Task(
            id=task_id, version=str(ver) if ver is not None else None, status=status,
            location=location if isinstance(location, str) and location.strip() else None,
            config_file=config_file, entry_point=entry_point, entry=entry, settings=parsed,
        )

    def _check_location(self, task_id: str, location: str,
                        locations: dict[str, str | ClawbackError]) -> str:
        """``location`` (canonical) refused when another active task's location contains it or
        lies inside it, or when it passes through a symlink or a file on the disk."""
        clash = _overlapping(task_id, location, locations)
        if clash is not None:
            other, where = clash
            how = ("is also" if where == location else
                   "lies inside" if location.startswith(where + "/") else "contains")
            raise MalformedFile(
                f"task_registry.json: task {task_id}'s location {location} {how} task "
                f"{other}'s location {where}",
                "give every active task its own directory, none inside another's "
                f"(a rollback of one would rewrite the other), e.g. tasks/{task_id}")
        kind = safefs.check_dir(self.root, location)
        if kind in ("behind-link", "behind-mount", "link", "mount"):
            raise MalformedFile(
                f"task_registry.json: task {task_id}'s location {location} passes through a "
                "symlink, a mount point or a file",
                "point the location at the real directory inside the workspace; clawback never "
                "reads or writes a task through a symlink (it could lead into another task or "
                "outside the workspace)")
        if kind not in ("dir", "missing"):
            raise MalformedFile(f"task_registry.json: task {task_id}'s location {location} is "
                                "not a directory", "point it at the task's directory, e.g. "
                                f"tasks/{task_id}")
        return location


def entry_state(entry: dict[str, Any], parsed: settings.TaskSettings) -> StatePaths:
    """The state rules of a registry entry: its settings' and those its rollback history kept."""
    kept = [p for record in entry.get("rollback_history") or [] if isinstance(record, dict)
            for p in record.get("state_kept") or [] if isinstance(p, str) and valid_pattern(p)]
    if not kept:
        return parsed.state
    return StatePaths.of(parsed.state_paths, (parsed.run.pidfile, parsed.health.source), kept)


def committed_state(ws: Workspace, task_id: str) -> StatePaths | None:
    """The state rules of ``task_id`` as HEAD's registry defines them (None when HEAD has no
    usable entry): they stay in force even if the working registry's entry was edited since
    (a trimmed rollback_history, a state_paths rule dropped by hand)."""
    raw = ws.git.show_file("HEAD", registry.REGISTRY_FILE)
    if raw is None:
        return None
    try:
        reg = registry.Registry.from_text(raw.decode("utf-8"), ws.registry_path,
                                          ws.registry_parses)
        entry = reg.entry(task_id)
        if entry is None:
            return None
        reg.check_entry(task_id)
        return entry_state(entry, settings.parse(task_id, entry.get("clawback")))
    except (UnicodeDecodeError, ClawbackError):
        return None


def canonical_location(task_id: str, location: Any) -> str:
    """The one spelling of a registry location (``./tasks//T01/.`` -> ``tasks/T01``); MalformedFile
    when it is not a directory inside the workspace."""
    bad = f"task_registry.json: task {task_id}: location {ids.shown(location)}"
    if not isinstance(location, str) or "\0" in location or "\\" in location:
        raise MalformedFile(f"{bad} is not a path inside the workspace",
                            "use a relative path such as tasks/T01")
    if location.startswith("/"):
        raise MalformedFile(f"{bad} is absolute",
                            "use a path relative to the workspace, such as tasks/T01")
    parts = [p for p in location.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise MalformedFile(f"{bad} leaves the workspace", "use a relative path such as tasks/T01")
    if not parts:
        raise MalformedFile(f"{bad} is the workspace itself",
                            "give the task its own directory, such as tasks/T01")
    if parts[0] in _RESERVED or parts[0].startswith("-"):
        raise MalformedFile(f"{bad} is not a task directory ({parts[0]} is reserved)",
                            "use a path such as tasks/T01")
    return "/".join(parts)


class _Locations(dict[str, "str | ClawbackError"]):
    """The active tasks' canonical locations, with an index for the overlap check: a location
    and every other one it equals, contains or lies inside, found in O(depth + log n) rather
    than by comparing with every other (a 200-task workspace scans in a few milliseconds)."""

    @cached_property
    def _index(self) -> tuple[dict[str, list[str]], list[str], dict[str, int]]:
        by_place: dict[str, list[str]] = {}
        for tid, where in self.items():
            if isinstance(where, str):
                by_place.setdefault(where, []).append(tid)
        return by_place, sorted(by_place), {tid: n for n, tid in enumerate(self)}

    def overlapping(self, task_id: str, location: str) -> tuple[str, str] | None:
        """The first other task (in registry order) whose location clashes with ``location``."""
        by_place, places, order = self._index
        hits = [where for where in ["/".join(location.split("/")[:n])
                                    for n in range(1, location.count("/") + 2)]
                if where in by_place]   # the location itself and each ancestor
        i = bisect.bisect_left(places, location + "/")
        while i < len(places) and places[i].startswith(location + "/"):
            hits.append(places[i])       # the locations inside it
            i += 1
        clashes = [(order[tid], tid, where) for where in hits for tid in by_place[where]
                   if tid != task_id]
        return min(clashes)[1:] if clashes else None


def _overlapping(task_id: str, location: str,
                 locations: dict[str, str | ClawbackError]) -> tuple[str, str] | None:
    index = locations if isinstance(locations, _Locations) else _Locations(locations)
    return index.overlapping(task_id, location)


def _active_locations(reg: registry.Registry) -> _Locations:
    """Every active entry's canonical location, or the error that makes it unusable."""
    found = _Locations()
    for tid in reg.task_ids():
        location = reg.field(tid, "location")
        if not registry.is_active({"status": reg.field(tid, "status"), "location": location}):
            continue
        if not isinstance(tid, str):
            continue
        try:
            found[str(tid)] = canonical_location(str(tid), location)
        except ClawbackError as exc:
            found[str(tid)] = exc
    return found
