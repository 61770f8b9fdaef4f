"""``clawback rollback``: preflight refusals at once, ``--dry-run`` a plan, else flows/rollback.py."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import SHARED_HELP, Outcome, seconds
from tasks_lib.core.errors import EXIT_OK

NAME = "rollback"
HELP = "stop, back up, restore files, config, registry and dependencies, verify, start; undone on failure"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--to", required=True, metavar="VERSION", help="the earlier version, e.g. 1.2.0")
    p.add_argument("--from", dest="from_version", metavar="VERSION",
                   help="refuse unless the task is at this version now")
    p.add_argument("--reason", default="", help="why (kept in the registry, tag and audit log)")
    p.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    p.add_argument("--grace", type=seconds, default=2.0, metavar="SECONDS",
                   help="the restarted task must stay up this long (default 2)")
    p.add_argument("--allow-shared-install", action="store_true", help=SHARED_HELP)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib import rollback
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    req = rollback.RollbackRequest(args.task, args.to, args.from_version, args.reason,
                                   allow_shared_install=args.allow_shared_install)
    plan = rollback.preflight(ws, req)  # refusals answer at once, before Prefect starts
    if args.dry_run:
        preview = rollback.dry_run(plan)
        return Outcome(EXIT_OK, preview, render.rollback_plan(preview))
    from flows import runtime
    from flows.rollback import run_rollback

    result = runtime.run("rollback", run_rollback, workspace=str(ws.root), task_id=args.task,
                         to_version=args.to, from_version=args.from_version, reason=args.reason,
                         grace_s=args.grace, allow_shared_install=args.allow_shared_install)
    return Outcome(EXIT_OK, result, render.rollback(result))
