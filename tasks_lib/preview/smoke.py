"""``preview --smoke``: levels 1–3 of a stored version in isolation (docs/design.md, "Preview
(the time machine)").

The version's environment is built from its lock, or found, in the cache rollback uses
(``.clawback/envs/<id>/<lock digest>/``, ``ensure_env(switch=False)``): the live ``current``
link is never switched, and the environment it points at is reused as it is, never re-synced
(a running task uses it). The version is materialised in a temporary preview (or the
operator's ``--materialize`` directory, kept), and:

1. files: the preview read back against the manifest (sha256, mode, links as links);
2. config: the preview's config ``version``, the manifest's registry entry (its version and
   checksum) and the tag agree on the version;
3. smoke: the version's own smoke settings (``clawback.smoke``, ``smoke_timeout_s`` as stored
   in its registry entry), run in the preview with the version's interpreter.

The task lock is held meanwhile (a rollback or gc building or removing the same environment
waits for nobody: it is refused, exit 3, and so is this while one of them runs). A deleted
task is refused: no environment is built for a task clawback never touches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import ids, safefs, settings
from tasks_lib.core.errors import BadInput, OperationFailed
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.deps import interpreter
from tasks_lib.formats import config, registry
from tasks_lib.preview.index import remove
from tasks_lib.preview.resolve import Resolved
from tasks_lib.preview.trees import Materialized, check_tree, materialize
from tasks_lib.snapshot import base_interpreter
from tasks_lib.state.oplocks import task_lock
from tasks_lib.verify_live import Level, run_smoke


@dataclass(frozen=True)
class SmokeReport:
    task_id: str
    version: str
    tag: str
    preview: str              # where it ran
    kept: bool                # the preview stays (--materialize), else it was removed
    environment: str          # the environment's directory, or the interpreter used
    environment_reused: bool
    levels: tuple[Level, ...]
    timings: dict[str, float]

    @property
    def ok(self) -> bool:
        return all(level.ok for level in self.levels)


def stored_task(res: Resolved) -> Task:
    """The task as version ``res`` defined it (its registry entry in the manifest)."""
    entry = res.snapshot.registry_entry
    config_file = entry.get("configuration_file", "config.yaml")
    entry_point = entry.get("entry_point")
    return Task(id=res.task_id, version=res.version, status="active",
                location=res.snapshot.location,
                config_file=config_file if isinstance(config_file, str) else "config.yaml",
                entry_point=entry_point if isinstance(entry_point, str) else None,
                entry=entry, settings=settings.parse(res.task_id, entry.get("clawback")))


def smoke(ws: Workspace, res: Resolved, dest: str | None = None, *,
          keep: bool = False) -> SmokeReport:
    """Levels 1–3 of ``res`` as the module docstring says. ``keep`` (--materialize): the
    preview stays, in ``dest`` or a new directory under .clawback/previews/; else it is a
    temporary one there, removed at the end."""
    res.require_trusted("smoke-tested")
    if not res.active:
        raise BadInput(f"task {res.task_id} is deleted or has no location: --smoke builds no "
                       "environment for it", f"look at it without --smoke: `clawback preview "
                       f"--task {res.task_id} --version {res.version}`")
    task = stored_task(res)
    if not ids.safe_relative_path(task.config_file):
        raise BadInput(f"{res.tag}'s configuration_file is not a path inside the task",
                       "pick another version")
    timings: dict[str, float] = {}
    with task_lock(ws.ensure_state_dir(), res.task_id, "preview --smoke"):
        t0 = time.monotonic()
        python, where, reused = _interpreter(ws, res, task)
        timings["environment"] = time.monotonic() - t0
        tree = materialize(ws, res, dest, purpose="materialize" if keep else "smoke")
        try:
            timings["materialize"] = time.monotonic() - t0 - timings["environment"]
            levels = (_files(tree, res), _config(tree, res, task),
                      _smoke(ws, tree, res, task, python))
            timings["levels"] = time.monotonic() - t0 - sum(timings.values())
        finally:
            if not keep:
                remove(ws, tree.id)
    return SmokeReport(res.task_id, res.version, res.tag, str(tree.path), keep,
                       where, reused, levels, timings)


def _interpreter(ws: Workspace, res: Resolved, task: Task) -> tuple[Path, str, bool]:
    mode = task.settings.python
    if mode == "venv":
        state = ws.state_dir
        lock = deps.Lock.from_text(res.snapshot.python_lock)
        root = deps.env_root(state, task.id)
        live = deps.link_target(root)
        wanted = root / lock.digest_hex[:16]
        info = deps.ensure_env(state, task.id, lock, base_interpreter(ws, task),
                               verify=live != wanted, switch=False)
        return info.python, str(info.path), info.reused
    if mode == "none":
        found = interpreter.path_python(ws.root)
        if found is None:
            raise OperationFailed(f"{res.tag} uses the interpreter on PATH (python: none), and "
                                  "there is none", step="smoke", hint="put python3 on PATH")
        return found, str(found), True
    path = interpreter.configured_path(task, ws.root)
    return path, str(path), True


def _files(tree: Materialized, res: Resolved) -> Level:
    check = check_tree(tree.path, res)
    return Level(1, "files", check.ok, check.detail)


def _config(tree: Materialized, res: Resolved, task: Task) -> Level:
    snap = res.snapshot
    problems = []
    data = safefs.read_bytes(tree.path, task.config_file)
    found = config.read_version(data.decode("utf-8", "replace")) if data is not None else None
    if found != snap.version:
        problems.append(f"{task.config_file} says {found}")
    if str(snap.registry_entry.get("version")) != snap.version:
        problems.append(f"the registry entry says {snap.registry_entry.get('version')}")
    if registry.entry_checksum(snap.registry_entry) != snap.registry_checksum:
        problems.append("the registry entry differs from its checksum")
    problems += list(res.problems)
    return Level(2, "config", not problems,
                 "; ".join(problems) or f"config, registry entry and tag say {snap.version}")


def _smoke(ws: Workspace, tree: Materialized, res: Resolved, task: Task, python: Path) -> Level:
    modules = [res.rel(f.path) for f in res.snapshot.files
               if f.path.endswith(".py") and f.mode != "120000"]
    return run_smoke(ws.root, task.settings, task.entry_point, tree.path, modules, python)
