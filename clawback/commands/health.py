"""``clawback health``: the health check flow (flows/health.py), the task checked first."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome, count, minutes
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "health"
HELP = ("error rate of each task's current version (breach above the threshold with enough "
        "runs), process, files, packages, env vars; exit 1 if any task is unhealthy")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="one task (default: every active task)")
    p.add_argument("--auto-rollback", action="store_true",
                   help="roll a breached task back to its newest stable, non-quarantined older "
                        "version; escalate when there is none or one ran within --min-interval")
    p.add_argument("--min-interval", type=minutes, default=60, metavar="MINUTES",
                   help="at most one automatic rollback per task in this time (default 60)")
    p.add_argument("--promote-after", type=count, default=0, metavar="K",
                   help="mark the running version stable after K consecutive healthy checks "
                        "(inconclusive ones do not break the streak; default 0: never)")
    p.add_argument("--errors-before-alert", type=count, default=3, metavar="N",
                   help="escalate (audit entry and alert) when the health source could not be "
                        "read N checks in a row (default 3)")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    if args.task is not None:
        ws.task(args.task)  # unknown or hostile: exit 2 before Prefect starts
    from flows import runtime
    from flows.health import run_health

    result = runtime.run("health", run_health, workspace=str(ws.root), task_id=args.task,
                         auto_rollback=args.auto_rollback, min_interval_minutes=args.min_interval,
                         promote_after=args.promote_after,
                         errors_before_alert=args.errors_before_alert)
    return Outcome(EXIT_FAILED if result.unhealthy else EXIT_OK, result, render.health(result))
