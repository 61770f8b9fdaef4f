"""``clawback diff``: what changed between two versions of a task, or a version and the live tree
(read-only: never imports Prefect; docs/design.md, "Diff")."""

from __future__ import annotations

import argparse
import sys

from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_OK

NAME = "diff"
HELP = "what changed between two versions of a task (or a version and the live tree)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--v1", metavar="A", help="from this version (default: the current version)")
    p.add_argument("--v2", metavar="B",
                   help="to this version, or `working` for the live tree (the default)")
    p.add_argument("--stat", action="store_true",
                   help="only the per-file line counts and each section's summary")


def run(args: argparse.Namespace) -> Outcome:
    from clawback import diffview
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.versiondiff.compare import diff_task

    ws = Workspace.discover(args.workspace)
    result = diff_task(ws, args.task, args.v1, args.v2)
    if args.stat:
        result = result.stat()
    return Outcome(EXIT_OK, result, diffview.text(result, stat=args.stat,
                                                  colour=diffview.use_colour(sys.stdout)))
