"""``clawback demo``: the story on a throwaway workspace (clawback/demo/story.py)."""

from __future__ import annotations

import argparse
import sys

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "demo"
HELP = "the whole story on a throwaway workspace (embedded Prefect, offline)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", action="store_true", help="keep the demo workspace for a look around")


def run(args: argparse.Namespace) -> Outcome:
    from clawback.demo.story import run_demo

    result = run_demo(keep=args.keep, out=sys.stderr if args.json else sys.stdout)
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, render.demo(result))
