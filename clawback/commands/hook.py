"""``clawback hook``: what the git hooks installed by init run (no Prefect)."""

from __future__ import annotations

import argparse
import os
import sys

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "hook"
HELP = "the checks the git hooks installed by init run"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=["pre-commit"])


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.secrets.hooks import staged_secrets

    ws = Workspace.discover(args.workspace)
    result = staged_secrets(ws, os.environ.get("GIT_INDEX_FILE"))  # the index being committed
    text = render.staged_secrets(result)
    if not result.ok and not args.json:
        print(text, file=sys.stderr)  # git shows a hook's stderr
        text = ""
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, text)
