"""``clawback promote``: mark a version stable (flows/promote.py), the version checked first."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_OK

NAME = "promote"
HELP = "mark a version stable: automatic rollback only targets stable, non-quarantined versions"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--force", action="store_true",
                   help="promote a quarantined version (one rolled back from), lifting the quarantine")
    p.add_argument("--reason", default="")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core import ids
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    ws.task(args.task)
    version = ids.version(args.version)
    from flows import runtime
    from flows.promote import run_promote

    result = runtime.run("promote", run_promote, workspace=str(ws.root), task_id=args.task,
                         version=version, force=args.force, reason=args.reason)
    return Outcome(EXIT_OK, result, render.promote(result))
