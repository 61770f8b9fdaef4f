"""``clawback verify-snapshot``: check a stored version (read-only: never imports Prefect)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "verify-snapshot"
HELP = "check a stored version: tag, commit, checksums of git's content, manifest integrity"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--version", required=True)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.verify_snapshot import verify_snapshot

    ws = Workspace.discover(args.workspace)
    ws.task(args.task, active=False)
    result = verify_snapshot(ws, args.task, args.version)
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, render.verification(result))
