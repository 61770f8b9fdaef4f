"""Which Python a task runs with: its start, the undo's restart and its smoke test (docs/design.md,
"Which Python a task runs with").

- ``python: venv`` — the task's own environment, ``.clawback/envs/<id>/current/bin/python``;
- ``python: /abs/path`` — that interpreter (an absolute path, never inside the task directory);
- ``python: none`` — the ``python3`` (else ``python``) on the operator's PATH, looked up in the
  absolute PATH entries only.

Never a file inside the workspace (an agent could write ``tasks/T01/python3``, another task's
directory or a ``bin/`` of the workspace), judged by where the file really is (a symlink outside
pointing in counts as inside); a venv's ``current`` link must point into the task's own
``.clawback/envs/<id>/``. Never clawback's own interpreter standing in for the task's. The PATH
a task process gets is cleaned the same way (:func:`clean_path`): no empty or relative entries,
none inside the workspace, so a bare ``python`` in ``run.command`` cannot resolve to a file the
workspace holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tasks_lib.core.errors import BadInput, OperationFailed
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import envs as deps


def _inside(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
    except OSError:
        return False


def clean_path(path: str | None, forbidden: Path) -> str:
    """``path`` (a PATH value) without empty or relative entries, without entries inside
    ``forbidden`` (the workspace), and without clawback's own environment (a bare ``python`` in
    a task's command must never be clawback's)."""
    own = _own_bins()
    kept = [p for p in (path or "").split(os.pathsep)
            if p and os.path.isabs(p) and not _inside(Path(p), forbidden)
            and os.path.realpath(p) not in own]
    return os.pathsep.join(dict.fromkeys(kept))


def _own_bins() -> set[str]:
    """clawback's own interpreter's bin directories (its venv, and what that venv was made
    from when the operator never meant it)."""
    return {os.path.realpath(Path(sys.prefix) / "bin")}


def path_python(forbidden: Path, environ: dict[str, str] | None = None) -> Path | None:
    """The operator's ``python3`` / ``python`` on PATH (absolute entries only; neither the entry
    nor the file it finds, links followed, inside ``forbidden``: the workspace; never clawback's
    own environment)."""
    env = os.environ if environ is None else environ
    own = _own_bins()
    for name in ("python3", "python"):
        for entry in clean_path(env.get("PATH"), forbidden).split(os.pathsep):
            if not entry or os.path.realpath(entry) in own:
                continue
            candidate = Path(entry) / name
            if candidate.is_file() and os.access(candidate, os.X_OK) and \
                    not _inside(candidate, forbidden):
                return candidate
    return None


def task_python(ws: Workspace, task: Task) -> Path:
    """The interpreter ``task`` runs with (see the module docstring); OperationFailed or
    BadInput saying what to do when there is none to use."""
    mode = task.settings.python
    if mode == "venv":
        return _venv_python(ws, task)
    if mode == "none":
        found = path_python(ws.root)
        if found is None:
            raise OperationFailed(f"task {task.id} uses the interpreter on PATH (python: none), "
                                  "and there is no python3 on PATH outside the workspace",
                                  step="start",
                                  hint="put python3 on PATH (an absolute directory outside the "
                                       'workspace), or set clawback.python to "venv" or an '
                                       "interpreter path")
        return found
    return configured_path(task, ws.root)


def _venv_python(ws: Workspace, task: Task) -> Path:
    root = deps.env_root(ws.state_dir, task.id)
    py = deps.current_python(ws.state_dir, task.id)
    if py is None:
        raise OperationFailed(f"task {task.id} has no environment yet ({root}/current)",
                              step="start", hint=f"snapshot the task once (`clawback snapshot "
                              f"--task {task.id}`) or recover it: that builds its environment")
    env_dir = Path(os.path.realpath(root / deps.CURRENT))
    if not env_dir.is_relative_to(os.path.realpath(root)) or (
            _inside(py, ws.root) and not _inside(py, root)):
        raise OperationFailed(f"task {task.id}'s environment link {root}/current points at "
                              f"{env_dir}, outside {root}", step="start",
                              hint=f"remove the link and recover the task (`clawback recover "
                              f"--task {task.id} --target-version <current>`): it is rebuilt")
    return py


def configured_path(task: Task, workspace: Path) -> Path:
    path = Path(task.settings.python)
    hint = ('set clawback.python to "venv", "none" or an absolute path outside the workspace, '
            'e.g. "/usr/bin/python3"')
    if not path.is_absolute():
        raise BadInput(f"task {task.id}: clawback.python {task.settings.python!r} is not an "
                       "absolute path", hint)
    if _inside(path, workspace):
        raise BadInput(f"task {task.id}: clawback.python lies inside the workspace ({path}, "
                       "links followed)", "a task's interpreter is never a file of the "
                       "workspace (the agent could replace it); " + hint)
    if _is_own(path):
        raise BadInput(f"task {task.id}: clawback.python {path} is clawback's own interpreter",
                       "a task never runs in clawback's environment (its packages and tools "
                       "would be the task's); " + hint)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise OperationFailed(f"task {task.id}: the interpreter {path} does not exist or is not "
                              "executable", step="start", hint=hint)
    if _runs_as_own(path):
        raise BadInput(f"task {task.id}: clawback.python {path} runs clawback's own interpreter "
                       "(its sys.prefix is clawback's environment)",
                       "a task never runs in clawback's environment; " + hint)
    return path


def _runs_as_own(path: Path) -> bool:
    """Does ``path`` (a wrapper script, a hard link …) start clawback's own environment? Asked
    of the interpreter itself: its ``sys.prefix``. Unknown (it does not run) counts as no: the
    start or the install that follows fails loudly."""
    try:
        done = subprocess.run([str(path), "-I", "-c", "import sys; print(sys.prefix)"],
                              capture_output=True, text=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    prefix = done.stdout.strip()
    return done.returncode == 0 and bool(prefix) and \
        os.path.realpath(prefix) == os.path.realpath(sys.prefix)


def _is_own(path: Path) -> bool:
    """Is ``path``, or a link on its way to the real file, in clawback's own bin directory?"""
    own, hop = _own_bins(), os.path.abspath(path)
    for _ in range(40):
        if os.path.realpath(os.path.dirname(hop)) in own:
            return True
        try:
            hop = os.path.join(os.path.dirname(hop), os.readlink(hop))
        except OSError:
            return False
    return True  # (a loop of links: never used)
