"""The ``clawback`` command: assemble the parser, dispatch, print, exit code (docs/design.md, "Exit
codes").

Each command is its own module in clawback/commands/ (its parser and its call); this module only
builds the parser from their list, calls the one chosen and maps what it returns or raises to
the output and the exit code, in one place. Read-only commands (status, history,
verify-snapshot) never import Prefect; mutating commands validate their input first (instantly,
before any orchestrator starts), then run their flow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from clawback import render
from clawback.commands import COMMANDS
from clawback.commands.interface import EXIT_CODES, Outcome
from tasks_lib.core import filenames
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK, BadInput, ClawbackError, exit_code_for

__all__ = ["EXIT_CODES", "Outcome", "build_parser", "main"]

# Free text whose empty value means what leaving it out means (no reason, no message); any other
# option's empty value is bad input, never taken as its default (``--task ''`` would be "every
# task", ``--v2 ''`` the working tree, ``--materialize ''`` a new directory, ``--workspace ''``
# the current directory).
EMPTY_ALLOWED = frozenset({"reason", "message"})

def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="the workspace (default: $CLAWBACK_WORKSPACE or the git top level here)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    """``clawback`` and one subparser per module of ``COMMANDS``, each with --workspace, --json
    and the exit-code table; the module adds its own arguments and is the handler."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="clawback", parents=[common],
        description="Version control and disaster recovery for OpenClaw task workspaces.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, parents=[common], help=command.HELP,
                           description=command.HELP, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=command.run)
        command.register(p)
        p.set_defaults(valued=_valued_options(p))
    return parser


def _valued_options(p: argparse.ArgumentParser) -> tuple[tuple[str, str], ...]:
    """(dest, option) of each option of ``p`` that takes a value and must not be given empty."""
    return tuple((a.dest, a.option_strings[-1]) for a in p._actions  # (argparse keeps no public list)
                 if a.option_strings and a.nargs != 0 and a.dest not in EMPTY_ALLOWED)


def _no_empty_values(args: argparse.Namespace) -> None:
    """BadInput (exit 2, before anything runs) for an option given an empty value."""
    for dest, option in getattr(args, "valued", ()):
        value = getattr(args, dest, None)
        if value == "" or (isinstance(value, list) and "" in value):
            raise BadInput(f"{option} was given an empty value",
                           f"give {option} a value, or leave it out for its default")


# -- entry point ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.json = getattr(args, "json", False)
    try:
        _no_empty_values(args)
        outcome: Outcome = args.handler(args)
    except ClawbackError as exc:
        return _fail(args, exc, exit_code_for(exc))
    except KeyboardInterrupt:
        print("clawback: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the top level: a bug, reported without a traceback
        if os.environ.get("CLAWBACK_DEBUG"):
            traceback.print_exc()
        return _fail(args, exc, EXIT_FAILED, internal=True)
    if args.json:
        _print_json({"ok": outcome.code == EXIT_OK, "command": args.command,
                     "exit_code": outcome.code, "result": render.jsonable(outcome.data)},
                    _masker(args))
    elif outcome.text:
        print(filenames.printable(_masker(args)(outcome.text)))
    return outcome.code


def _masker(args: argparse.Namespace) -> Callable[[str], str]:
    """What everything printed goes through: no secret value is ever shown (tasks_lib/masking)."""
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.secrets import masking

    try:
        values = masking.for_workspace(Workspace.discover(args.workspace).root)
    except ClawbackError:
        values = masking.secret_values()
    return lambda text: masking.mask(text, values=values)


def _print_json(doc: dict[str, Any], masked: Callable[[str], str]) -> None:
    """One JSON document, masked; a file name's byte that is not UTF-8 as its ``\\udcXX`` escape
    (what ``json.loads`` turns back into Python's surrogateescape str of the name), so a strict
    UTF-8 stdout never fails."""
    print(filenames.json_text(masked(json.dumps(doc, ensure_ascii=False, indent=2))))


def _fail(args: argparse.Namespace, exc: BaseException, code: int, internal: bool = False) -> int:
    masked = _masker(args)
    message = masked(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    hint = getattr(exc, "hint", None)
    hint = masked(hint) if hint else hint
    if internal:
        message = f"internal error: {type(exc).__name__}: {message}"  # (masked above)
        hint = "this is a bug in clawback; re-run with CLAWBACK_DEBUG=1 for the traceback and report it"
    if args.json:
        _print_json({"ok": False, "command": args.command, "exit_code": code,
                     "error": {"type": type(exc).__name__, "message": message, "hint": hint,
                               **({"paths": exc.paths} if hasattr(exc, "paths") else {})}},
                    masked)
    else:
        print(filenames.printable(f"clawback {args.command}: {message}"), file=sys.stderr)
        if hint:
            print(filenames.printable(f"  next: {hint}"), file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
