"""The four verification levels (docs/design.md, "The four verification levels"), against the live
state of a task.

1. files: every file of the snapshot matches its sha256 in the working tree; no versioned file
   missing or extra (state paths excluded);
2. config: config.yaml ``version``, the registry entry (version and checksum) and the tag agree;
3. smoke: the task's smoke test passes in its environment (default: byte-compile every module in
   memory and import the entry point under a name other than ``__main__``; nothing is written);
4. production readiness: the environment holds exactly the locked packages, the required
   environment variables are set (names only), the process runs when it should, the health
   source is readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core.filenames import shown
from tasks_lib.core.settings import TaskSettings
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.deps import interpreter
from tasks_lib.formats import config, registry
from tasks_lib.formats.manifest import Snapshot
from tasks_lib.gitops.restore import Scope
from tasks_lib.runtime.statepaths import StatePaths
from tasks_lib.secrets import masking

# stdin: {"modules": [the task's versioned .py files], "entry": the entry point or ""}
_DEFAULT_SMOKE = """
import importlib.util, json, sys
todo = json.load(sys.stdin)
for path in todo["modules"]:
    with open(path, 'rb') as fh:
        compile(fh.read(), path, 'exec')
if todo["entry"]:
    sys.path.insert(0, '.')
    spec = importlib.util.spec_from_file_location('__clawback_smoke__', todo["entry"])
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
"""


LEVEL_HEADERS = ("level", "check", "result", "detail")  # the table of levels, text and markdown


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    ok: bool
    detail: str = ""

    def cells(self) -> list[str]:
        """This level as a row under :data:`LEVEL_HEADERS`."""
        return [str(self.level), self.name, "ok" if self.ok else "FAIL", self.detail]


def files_level(ws: Workspace, task: Task, snap: Snapshot, scope: Scope | None = None) -> Level:
    """Every file of the snapshot against the working tree, read without following a symlink;
    paths that the current settings or the snapshot's treat as state (or ``scope``'s: a
    rollback's, which knows the version it left too) are not compared."""
    scope = scope or verified_scope(ws, task, snap)
    live = set(scope.live_files(ws.git, [f.path for f in snap.files]))
    recorded = {f.path: f for f in snap.files if scope.owns(f.path)}
    problems = [f"missing {shown(p)}" for p in sorted(set(recorded) - live)]
    problems += [f"extra {shown(p)}" for p in sorted(live - set(recorded))]
    for path in sorted(set(recorded) & live):
        found = safefs.entry(ws.root, path)
        data = found.data or b""
        kind_ok = (found.kind == "link") == (recorded[path].mode == "120000")
        if not kind_ok or "sha256:" + hashlib.sha256(data).hexdigest() != recorded[path].checksum:
            problems.append(f"changed {shown(path)}")
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        return Level(1, "files", False, "; ".join(problems[:5]) + more)
    return Level(1, "files", True, f"{len(recorded)} files match")


def verified_scope(ws: Workspace, task: Task, snap: Snapshot) -> Scope:
    target = StatePaths.recorded(snap.state_paths, snap.runtime)
    return Scope(ws.root, task.location or "", task.state.union(target))


def config_level(ws: Workspace, task: Task, snap: Snapshot) -> Level:
    problems = []
    data = safefs.read_bytes(ws.root, task.config_path)  # (the task's own file, never a link's)
    found = config.read_version(data.decode("utf-8", "replace")) if data is not None else None
    if found != snap.version:
        problems.append(f"{task.config_file} says {found}")
    entry = ws.load_registry().entry(task.id) or {}
    if str(entry.get("version")) != snap.version:
        problems.append(f"registry says {entry.get('version')}")
    elif registry.entry_checksum(entry) != snap.registry_checksum:
        problems.append("registry entry differs from the snapshot")
    if ws.git.rev(f"refs/tags/{snap.git_tag}") is None:  # one ref, not a listing of all tags
        problems.append(f"tag {snap.git_tag} missing")
    return Level(2, "config", not problems, "; ".join(problems) or f"config, registry and tag say {snap.version}")


def smoke_level(ws: Workspace, task: Task, python: Path, *,
                environ: Mapping[str, str] | None = None) -> Level:
    """The task's smoke test with ``python`` (its interpreter: tasks_lib/deps/interpreter.py) first
    on a PATH cleaned of the task directory, in the task directory."""
    modules: list[str] = []
    if task.settings.smoke is None:
        scope = Scope(ws.root, task.location or "", task.state)
        modules = [task.rel(p) for p in scope.live_files(ws.git) if p.endswith(".py")]
    return run_smoke(ws.root, task.settings, task.entry_point, ws.root / (task.location or ""),
                     modules, python, environ=environ)


def run_smoke(workspace: Path, settings: TaskSettings, entry_point: str | None, cwd: Path,
              modules: list[str], python: Path, *,
              environ: Mapping[str, str] | None = None) -> Level:
    """Level 3 in ``cwd``: ``settings.smoke``, or the default (compile ``modules``, import
    ``entry_point``), with ``python`` first on a PATH cleaned of ``workspace``; output masked.
    A preview runs a stored version's smoke test in its materialised tree through this."""
    smoke = settings.smoke
    stdin = None
    if smoke is None:
        argv = [str(python), "-B", "-c", _DEFAULT_SMOKE]
        stdin = json.dumps({"modules": modules, "entry": entry_point or ""})
    else:
        argv = list(smoke) if isinstance(smoke, tuple) else shlex.split(smoke)
    env = dict(environ if environ is not None else os.environ)
    env["PATH"] = os.pathsep.join(
        p for p in (str(python.parent), interpreter.clean_path(env.get("PATH"), workspace)) if p)
    if (python.parent.parent / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(python.parent.parent)
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              input=stdin, errors="backslashreplace",  # a raw-byte name
                              timeout=settings.smoke_timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return Level(3, "smoke", False, f"timed out after {settings.smoke_timeout_s:g}s")
    except OSError as exc:
        return Level(3, "smoke", False, f"could not run {argv[0]}: {exc.strerror or exc}")
    if proc.returncode != 0:  # its output may echo a secret the task was given: masked here
        tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
        tail = masking.mask(tail, values=masking.for_workspace(workspace, env))
        return Level(3, "smoke", False, f"exit {proc.returncode}: {tail}")
    return Level(3, "smoke", True, "default: compile + import entry point" if smoke is None else "passed")


def readiness_level(ws: Workspace, task: Task, snap: Snapshot, python: Path | None,
                    should_run: bool | None, *, environ: Mapping[str, str] | None = None) -> Level:
    from tasks_lib.runtime.process import run_state

    problems = []
    if python is not None and task.settings.python == "venv":
        have = deps.installed(python)
        if have != snap.python_packages:
            extra = sorted(set(have) - set(snap.python_packages))
            missing = sorted(set(snap.python_packages) - set(have))
            problems.append(f"packages differ (missing {', '.join(missing) or '-'}; extra {', '.join(extra) or '-'})")
    unset = missing_env_vars(snap, environ)
    if unset:
        problems.append(f"environment variables not set: {', '.join(unset)}")
    if should_run:
        state = run_state(ws, task)
        if state.running is False:
            problems.append(f"process not running ({state.detail})")
    # a file source must be readable; Prefect flow-run states are read by the health check itself
    source = ws.root / (task.location or "") / task.settings.health.source
    if task.settings.health.source != "prefect" and source.exists() and not os.access(source, os.R_OK):
        problems.append(f"health source {task.settings.health.source} is not readable")
    return Level(4, "production readiness", not problems, "; ".join(problems) or "ready")


def missing_env_vars(snap: Snapshot, environ: Mapping[str, str] | None = None) -> list[str]:
    env = environ if environ is not None else os.environ
    return [n for n in snap.environment_variables if not env.get(n)]
