"""The workspace: a git repository holding ``task_registry.json`` and ``tasks/<id>/``.

Tool state lives in ``<workspace>/.clawback/`` (git-ignored): locks, environments, audit log,
exported snapshots, scratch files. Layout in docs/design.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks_lib import ids, registry, settings
from tasks_lib.errors import BadInput, MalformedFile, NotFound
from tasks_lib.gitrepo import Git

STATE_DIR = ".clawback"


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
        return self.status != "deleted" and bool(self.location)

    @property
    def config_path(self) -> str:
        return f"{self.location}/{self.config_file}"

    def rel(self, repo_path: str) -> str:
        """A repo-relative path as seen from the task directory."""
        return repo_path[len(self.location) + 1:] if self.location else repo_path

    def is_state(self, repo_path: str) -> bool:
        return self.settings.is_state(self.rel(repo_path))


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
        if not ws.registry_path.is_file():
            raise BadInput(f"{ws.registry_path} not found",
                           "a workspace needs task_registry.json at its top level (SPEC §2)")
        return ws

    @property
    def git(self) -> Git:
        return Git(self.root)

    @property
    def registry_path(self) -> Path:
        return self.root / registry.REGISTRY_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def ensure_state_dir(self) -> Path:
        for sub in ("locks", "tmp", "snapshots", "envs", "run"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        ignore = self.state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# clawback tool state: never committed\n*\n")
        return self.state_dir

    def load_registry(self) -> registry.Registry:
        return registry.Registry.load(self.registry_path, self.registry_parses)

    def tasks(self, reg: registry.Registry | None = None) -> list[Task]:
        """Every registry entry (deleted ones included), in file order."""
        reg = reg or self.load_registry()
        return [self._task(tid, reg.entry(tid) or {}) for tid in reg.task_ids()]

    def task(self, task_id: str, reg: registry.Registry | None = None, *,
             active: bool = True) -> Task:
        ids.task_id(task_id)
        reg = reg or self.load_registry()
        entry = reg.entry(task_id)
        if entry is None:
            known = ", ".join(t for t in reg.task_ids()[:20]) or "none"
            raise NotFound(f"unknown task {task_id}", f"tasks in the registry: {known}")
        task = self._task(task_id, entry)
        if active and not task.active:
            why = "is deleted" if task.status == "deleted" else "has no location"
            raise BadInput(f"task {task_id} {why}; clawback never touches it",
                           "pick an active task (`clawback status` lists them)")
        return task

    def _task(self, task_id: str, entry: dict[str, Any]) -> Task:
        status = str(entry.get("status", "active"))
        location = entry.get("location")
        if status != "deleted" and location:
            ids.task_id(task_id)
            location = self._location(task_id, location)
        config_file = entry.get("configuration_file", "config.yaml")
        if not isinstance(config_file, str) or not ids.safe_relative_path(config_file):
            raise MalformedFile(f"task_registry.json: task {task_id}: bad configuration_file",
                                "use a file name inside the task directory, e.g. config.yaml")
        entry_point = entry.get("entry_point")
        if entry_point is not None and (not isinstance(entry_point, str) or not ids.safe_relative_path(entry_point)):
            raise MalformedFile(f"task_registry.json: task {task_id}: bad entry_point",
                                "use a file inside the task directory, e.g. main.py")
        ver = entry.get("version")
        return Task(
            id=task_id, version=str(ver) if ver is not None else None, status=status,
            location=location if isinstance(location, str) and location else None,
            config_file=config_file, entry_point=entry_point, entry=entry,
            settings=settings.parse(task_id, entry.get("clawback")),
        )

    def _location(self, task_id: str, location: Any) -> str:
        if not isinstance(location, str) or not ids.safe_relative_path(location.rstrip("/")):
            raise MalformedFile(
                f"task_registry.json: task {task_id}: location {location!r} is not a path inside the workspace",
                "use a relative path such as tasks/T01",
            )
        rel = location.rstrip("/")
        resolved = (self.root / rel).resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise MalformedFile(f"task_registry.json: task {task_id}: location {rel} leaves the workspace",
                                "use a relative path such as tasks/T01")
        return rel
