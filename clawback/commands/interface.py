"""What every command module offers the CLI, and what they share.

A command is one module in this package with four names (dvc's ``dvc/commands/<verb>.py``):

- ``NAME``: the verb as typed (``verify-snapshot``);
- ``HELP``: its one-line help, also its ``--help`` description;
- ``register(parser)``: adds its arguments to the parser clawback/cli.py made for it (with
  ``--workspace``, ``--json`` and the exit-code epilog already there);
- ``run(args) -> Outcome``: validates, calls the domain or a flow, says how it went.

Adding a command is writing one module and naming it in ``COMMANDS`` (clawback/commands/__init__.py).
A module imports only what its parser needs at the top; its ``run`` imports the domain, and
Prefect only where a flow runs, so read-only commands never pay for (or need) the orchestrator.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

EXIT_CODES = """exit codes:
  0  success
  1  the operation ran and failed, or found a problem (verification failed, unhealthy)
  2  bad input (unknown task or version, invalid id, malformed file)
  3  refused because of a conflict (lock held, tag exists, secret found, state would be lost)"""

SHARED_HELP = ("the task's python is a shared interpreter (a path): allow changing its packages "
               "(journaled, undone on failure); without it such a change is refused (exit 3)")


@dataclass(frozen=True)
class Outcome:
    code: int
    data: Any          # the --json document's "result"
    text: str          # what a person reads


# -- argument types (argparse turns their errors into exit 2 with usage) -------------------
def minutes(text: str) -> float:
    """A number of minutes from 0 to a year (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 525_600:  # (also refuses nan)
        raise argparse.ArgumentTypeError(f"expected minutes from 0 to 525600, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A number of seconds from 0 to a day."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, got {text!r}")
    return value


def count(text: str) -> int:
    """A whole number of at least 0 (argparse turns the error into exit 2 with usage)."""
    if not text.isdigit() or len(text) > 6:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 999999, got {text!r}")
    return int(text)
