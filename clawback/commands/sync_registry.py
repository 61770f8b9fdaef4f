"""``clawback sync-registry``: does the registry agree with each config's ``version:``, the
version tags and the ``snapshots[]`` records? ``--check`` only reports (read-only: never imports
Prefect; git hooks run it after every merge and checkout); without it, the repairs that need no
guess run as the sync-registry flow (flows/sync_registry.py)."""

from __future__ import annotations

import argparse

from clawback import sync_render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "sync-registry"
HELP = ("reconcile the registry, each config's version, the version tags and the snapshots[] "
        "records: report mismatches, repair what needs no guess")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true",
                   help="only report (exit 1 on any mismatch, 0 when everything agrees)")
    p.add_argument("--task", help="one task (default: every active task)")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib import registry_sync
    from tasks_lib.core import ids
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    if args.task is not None:
        ids.task_id(args.task)
    report = registry_sync.check(ws, args.task)  # bad input answers here, before any flow
    if args.check or not report.repairs():
        return Outcome(EXIT_OK if report.ok else EXIT_FAILED, report, sync_render.report(report))
    from flows import runtime
    from flows.sync_registry import run_sync_registry

    result = runtime.run("sync-registry", run_sync_registry, workspace=str(ws.root),
                         task_id=args.task)
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, sync_render.repaired(result))
