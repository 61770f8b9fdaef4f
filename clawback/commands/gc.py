"""``clawback gc``: remove the environments no recent snapshot uses (tasks_lib/deps/gc.py).

Plain Python, no Prefect: a cleanup with nothing to retry or undo (environments are rebuilt from
the locks) must also work when the orchestrator is down.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from clawback import render
from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_OK

if TYPE_CHECKING:
    from tasks_lib.deps.gc import GcResult

NAME = "gc"
HELP = ("remove task environments that no snapshot among each task's newest versions uses "
        "(never the current, a stable or a running version's)")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", default="5", metavar="N",
                   help="keep the environments of each task's N newest snapshot versions "
                        "(default 5); the current, stable and running versions' always stay")
    p.add_argument("--task", help="only this task (default: every active task)")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would be removed and how many bytes; change nothing")


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.deps import gc

    ws = Workspace.discover(args.workspace)
    result = gc.collect(ws, args.keep, task_id=args.task, dry_run=args.dry_run)
    return Outcome(EXIT_OK, result, _text(result))


def _text(result: GcResult) -> str:
    verb = "would remove" if result.dry_run else "removed"
    rows = [[e.task_id, e.path.name, _size(e.bytes), verb, e.why] for e in result.removed]
    rows += [[e.task_id, e.path.name, _size(e.bytes), "kept", e.why] for e in result.kept]
    lines = [render.table(["task", "environment", "size", "", "why"], rows)] if rows else []
    lines += [f"left alone: {s}" for s in result.skipped]
    lines.append(f"{verb} {len(result.removed)} environment(s), {_size(result.bytes)} "
                 f"({result.bytes} bytes); kept {len(result.kept)} "
                 f"(--keep {result.keep})")
    return "\n".join(lines)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
