"""``clawback start``: start a task as a rollback does (no Prefect)."""

from __future__ import annotations

import argparse

from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_OK

NAME = "start"
HELP = "start a task as rollback does (its environment, a pidfile)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.deps import envs as deps
    from tasks_lib.runtime import process

    ws = Workspace.discover(args.workspace)
    task = ws.task(args.task)
    py = deps.current_python(ws.state_dir, task.id) if task.settings.python == "venv" else None
    state = process.start(ws, task, py)
    return Outcome(EXIT_OK, state, f"started {task.id} {task.version}" + (f" (pid {state.pid})" if state.pid else ""))
