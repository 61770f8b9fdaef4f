"""``clawback stop``: stop a task as a rollback does (no Prefect)."""

from __future__ import annotations

import argparse

from clawback.commands.interface import Outcome, seconds
from tasks_lib.core.errors import EXIT_OK

NAME = "stop"
HELP = "stop a task: TERM its process group, wait, KILL"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.runtime import process

    ws = Workspace.discover(args.workspace)
    task = ws.task(args.task)
    result = process.stop(ws, task, timeout=args.timeout)
    text = (f"stopped {task.id} (pid {result.pid}, {result.how})" if result.was_running
            else f"{task.id} was not running ({result.how})")
    return Outcome(EXIT_OK, result, text)
