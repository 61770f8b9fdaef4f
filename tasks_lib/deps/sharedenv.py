"""A shared interpreter (``clawback.python`` set to a path; docs/design.md, "Which Python a task
runs with"): its packages are changed only when the operator allows it (``--allow-shared-install``),
and then journaled, so a failed operation puts them back (the undo removes what was added and
reinstalls what changed).

Without the flag an operation that would change them is refused before anything changes
(exit 3). Packages already as pinned need no change and no flag.
"""

from __future__ import annotations

from pathlib import Path

from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.state.journal import Journal


def refuse_shared_change(task: Task, lock: deps.Lock, allowed: bool) -> None:
    """A shared interpreter (``python`` set to a path) is changed only with
    --allow-shared-install: other programs use it, and its packages cannot be made exact."""
    if allowed:
        return
    changes = deps.pin_changes(Path(task.settings.python), lock)
    if changes:
        shown = ", ".join(changes[:6]) + (f" and {len(changes) - 6} more" if len(changes) > 6 else "")
        raise Conflict(f"{task.id} uses the shared interpreter {task.settings.python}, and this "
                       f"would change its packages: {shown}",
                       "pass --allow-shared-install to change them (journaled and undone on "
                       "failure), install them yourself first, or give the task its own "
                       'environment (clawback.python "venv")')


def install_shared(ws: Workspace, task: Task, lock: deps.Lock, journal: Journal,
                   allowed: bool) -> None:
    """Install the lock's pins into the task's shared interpreter, the packages before recorded
    in the journal first (the undo reinstalls them and removes what was added)."""
    python = Path(task.settings.python)
    refuse_shared_change(task, lock, allowed)
    if not deps.pin_changes(python, lock):
        return
    journal.add("restore_packages", f"put {python}'s packages back", python=str(python),
                before=list(deps.installed(python)), cwd=str(ws.state_dir))
    deps.install_pins(str(python), lock)
