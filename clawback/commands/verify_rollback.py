"""``clawback verify-rollback``: the four levels against the live task (no Prefect)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "verify-rollback"
HELP = "the four verification levels (files, config, smoke, readiness) against the live task"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True)
    p.add_argument("--expected", required=True, metavar="VERSION")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.rollback import verify_live

    ws = Workspace.discover(args.workspace)
    levels = verify_live(ws, args.task, args.expected)
    ok = all(lv.ok for lv in levels)
    data = {"task": args.task, "expected": args.expected, "ok": ok, "levels": levels}
    return Outcome(EXIT_OK if ok else EXIT_FAILED, data, render.levels(args.task, args.expected, levels))
