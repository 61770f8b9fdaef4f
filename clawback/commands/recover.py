"""``clawback recover``: disaster recovery (flows/recover.py) after the rollback's preflight."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import SHARED_HELP, Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "recover"
HELP = "disaster recovery: back up, roll back, verify the live task at four levels, report"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--target-version", required=True, metavar="VERSION",
                   help="an earlier version, or the current one to repair a damaged task in place "
                        "(files, registry entry and environment restored from its snapshot)")
    p.add_argument("--reason", default="")
    p.add_argument("--allow-shared-install", action="store_true", help=SHARED_HELP)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib import rollback
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    rollback.preflight(ws, rollback.RollbackRequest(args.task, args.target_version, None, args.reason,
                                                    repair=True,
                                                    allow_shared_install=args.allow_shared_install))
    from flows import runtime
    from flows.recover import run_recover

    result = runtime.run("recover", run_recover, workspace=str(ws.root), task_id=args.task,
                         target_version=args.target_version, reason=args.reason,
                         allow_shared_install=args.allow_shared_install)
    text = (render.rollback(result.rollback) + "\n"
            + render.levels(args.task, result.rollback.to_version, result.levels)
            + f"\ntime to recovery {result.seconds:.2f}s; report: {result.report}")
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, text)
