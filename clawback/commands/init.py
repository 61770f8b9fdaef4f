"""``clawback init``: adopt a workspace (flows/init.py)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "init"
HELP = "adopt a workspace: .gitignore, .clawback/, tag and mark stable current versions"


def register(parser: argparse.ArgumentParser) -> None:
    """No arguments beyond --workspace and --json."""


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    from flows import runtime
    from flows.init import run_init

    result = runtime.run("init", run_init, workspace=str(ws.root))
    return Outcome(EXIT_OK if not result.failures else EXIT_FAILED, result, render.init(result))
