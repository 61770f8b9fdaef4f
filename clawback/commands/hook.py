"""``clawback hook NAME [-- ARGS]``: what the git hooks installed by init run (no Prefect).

pre-commit refuses plaintext secrets and warns about untagged version bumps; pre-push refuses a
version tag that fails verify-snapshot; post-merge and post-checkout run ``sync-registry --check``
and only ever warn (docs/design.md, "Git hooks"). What the hooks print goes to stderr, which git
shows. The repository judged is the one git runs the hook in (its working directory, or
--workspace; never $CLAWBACK_WORKSPACE, which names some other workspace); when that is not a
clawback workspace (not in git, no task_registry.json at its top) the hook does nothing, exit 0:
a hook chained by hand into a hooks directory every repository shares must not refuse their commits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clawback import hook_text
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "hook"
HELP = "the checks the git hooks installed by init run"
HOOK_NAMES = ("pre-commit", "pre-push", "post-merge", "post-checkout")  # tasks_lib.githooks.HOOKS


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=HOOK_NAMES)
    p.add_argument("hook_args", nargs="*", metavar="ARG",
                   help="what git passes the hook, after -- (options such as --json go before NAME); "
                        "pre-push reads git's ref lines on stdin")


@dataclass(frozen=True)
class PreCommit:
    secrets: Any
    version_bumps: tuple[Any, ...]


@dataclass(frozen=True)
class NotAWorkspace:
    ran: bool
    reason: str


@dataclass(frozen=True)
class RegistryCheck:
    ran: bool
    exit_code: int | None = None
    report: str = ""


def run(args: argparse.Namespace) -> Outcome:
    if args.name == "post-checkout" and args.hook_args[2:3] != ["1"]:
        return Outcome(EXIT_OK, RegistryCheck(False), "")  # a file checkout: no branch moved
    top = _repository(args.workspace)
    if isinstance(top, NotAWorkspace):
        return Outcome(EXIT_OK, top, "")
    args.workspace = str(top)
    if args.name in ("post-merge", "post-checkout"):
        check = _registry_check(args)
        return _told(args, None, EXIT_OK, check, hook_text.registry_check(args.name, check))
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    if args.name == "pre-commit":
        return _pre_commit(args, ws)
    from tasks_lib.hookchecks import check_push

    result = check_push(ws, sys.stdin.buffer.read())
    return _told(args, ws, EXIT_OK if result.ok else EXIT_FAILED, result, hook_text.push(result))


def _repository(given: str | None) -> Path | NotAWorkspace:
    """The top level of the repository the hook runs in, or NotAWorkspace (nothing to check). A
    --workspace that is not a directory, or a workspace whose registry is a link, is still bad
    input (Workspace.discover says what to do)."""
    from tasks_lib.formats.registry import REGISTRY_FILE
    from tasks_lib.gitops.repo import Git

    start = Path(given).expanduser() if given else Path.cwd()
    if not start.is_dir():
        return start
    top = Git.toplevel(start)
    if top is None:
        return NotAWorkspace(False, f"{start} is not in a git working tree")
    if not os.path.lexists(top / REGISTRY_FILE):
        return NotAWorkspace(False, f"{top} has no {REGISTRY_FILE}: not a clawback workspace")
    return top if not given else start


def _pre_commit(args: argparse.Namespace, ws: Any) -> Outcome:
    from tasks_lib.hookchecks import unsnapshotted_bumps
    from tasks_lib.secrets.hooks import staged_secrets

    index = os.environ.get("GIT_INDEX_FILE")  # the index being committed
    found = staged_secrets(ws, index)
    bumps = unsnapshotted_bumps(ws, index) if found.ok else ()
    text = "\n".join(t for t in (hook_text.staged_secrets(found), hook_text.bumps(bumps)) if t)
    return _told(args, ws, EXIT_OK if found.ok else EXIT_FAILED, PreCommit(found, bumps), text)


def _told(args: argparse.Namespace, ws: Any, code: int, data: Any, text: str) -> Outcome:
    """git shows a hook's stderr: the report goes there, masked (``--json`` keeps it on stdout,
    masked by the CLI)."""
    if text and not args.json:
        from tasks_lib.core import filenames
        from tasks_lib.core.workspace import Workspace
        from tasks_lib.secrets import masking

        root = (ws or Workspace.discover(args.workspace)).root
        shown = masking.mask(text, values=masking.for_workspace(root))
        print(filenames.printable(shown), file=sys.stderr)
        text = ""
    return Outcome(code, data, text)


def _registry_check(args: argparse.Namespace) -> RegistryCheck:
    """``sync-registry --check`` run in this process through its command module (register, run:
    clawback/commands/interface.py), when this clawback has one; its output is the warning."""
    from clawback.commands import COMMANDS
    from tasks_lib.core.errors import ClawbackError, exit_code_for

    command = next((c for c in COMMANDS if c.NAME == "sync-registry"), None)
    if command is None:
        return RegistryCheck(False)
    parser = argparse.ArgumentParser(prog="clawback sync-registry", add_help=False)
    command.register(parser)
    sub = parser.parse_args(["--check"])
    sub.workspace, sub.json, sub.command = args.workspace, False, command.NAME
    try:
        with contextlib.redirect_stdout(sys.stderr):
            outcome = command.run(sub)
    except ClawbackError as exc:
        return RegistryCheck(True, exit_code_for(exc), str(exc))
    except Exception as exc:  # noqa: BLE001 - a warning-only hook never fails the merge
        return RegistryCheck(True, EXIT_FAILED, f"internal error: {type(exc).__name__}")
    return RegistryCheck(True, outcome.code, outcome.text)
