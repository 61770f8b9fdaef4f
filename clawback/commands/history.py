"""``clawback history``: a task's versions, tags and rollbacks (read-only: never imports Prefect)."""

from __future__ import annotations

import argparse
import sys

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_BAD_INPUT, EXIT_OK

NAME = "history"
HELP = "a task's versions, tags, rollbacks: who, when, why"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.status import task_history

    ws = Workspace.discover(args.workspace)
    result = task_history(ws, args.task)
    if result.error and not args.json:
        print(f"clawback history: {result.error}", file=sys.stderr)
    return Outcome(EXIT_BAD_INPUT if result.error else EXIT_OK, result, render.history(result))
