"""``clawback init``: adopt a workspace (flows/init.py)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "init"
HELP = "adopt a workspace: .gitignore, .clawback/, tag and mark stable current versions"


def _hooks(text: str) -> str:
    from tasks_lib.core.errors import BadInput
    from tasks_lib.githooks import parse_choice

    try:
        parse_choice(text)
    except BadInput as exc:  # argparse: exit 2 with usage, before anything changes
        raise argparse.ArgumentTypeError(f"{exc.message}; {exc.hint}") from exc
    return text


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hooks", type=_hooks, default="all", metavar="LIST",
        help="git hooks to have installed, chained with yours: all (default), none (uninstall, "
             "putting your own hooks back), or a comma list of pre-commit, pre-push, post-merge, "
             "post-checkout")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    from flows import runtime
    from flows.init import run_init

    result = runtime.run("init", run_init, workspace=str(ws.root), hooks=args.hooks)
    return Outcome(EXIT_OK if not result.failures else EXIT_FAILED, result, render.init(result))
