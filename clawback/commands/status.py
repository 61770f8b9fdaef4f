"""``clawback status``: every task, and the undo of operations killed midway (never imports Prefect)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import EXIT_CODES, Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "status"
HELP = ("every task: version, stable marks, running or not, drift; "
        "undoes operations that were killed midway")

STATUS_HELP = """An operation killed midway (SIGKILL, power loss) leaves its journal in .clawback/journal/.
status tries that task's lock without waiting: if it is held, the operation is still running and
is only reported; if it is free, its process is gone, and status undoes what it changed (files,
registry, environment, commit, tag; restarts the old version if it was running), as the next
snapshot or rollback would, and records it in the audit log. With --read-only it only reports.
Exit 1 while an undo could not complete: its journal is kept as <name>.failed.json; fix what
it names by hand, then delete it.

"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="only this task")
    p.add_argument("--read-only", action="store_true",
                   help="only report operations that were killed midway; do not undo them")
    p.epilog = STATUS_HELP + EXIT_CODES


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.status import workspace_status

    ws = Workspace.discover(args.workspace)
    if args.task:
        ws.task(args.task, active=False)  # that task's own problem: exit 2
    rows = workspace_status(ws, repair=not args.read_only, only=args.task)
    if args.task:
        rows = [r for r in rows if r.id == args.task]
    # an undo that could not complete, or a registry entry that cannot be used as it stands
    problem = any(i.problem for r in rows for i in r.interrupted) or any(r.error for r in rows)
    return Outcome(EXIT_FAILED if problem else EXIT_OK, {"workspace": str(ws.root), "tasks": rows},
                   render.status(rows))
