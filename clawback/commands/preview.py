"""``clawback preview``: the time machine, read-only towards the live task (docs/design.md,
"Preview (the time machine)"). Never imports Prefect: nothing here is a workspace-changing flow.
"""

from __future__ import annotations

import argparse
import sys

from clawback.commands.interface import Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK, BadInput

NAME = "preview"
HELP = ("show a stored version (files, config, dependencies, settings, marks), one of its files, "
        "write it out, or smoke-test it in isolation; the live task is never touched")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task")
    p.add_argument("--version", metavar="VERSION", help="the stored version, e.g. 1.2.0")
    p.add_argument("--show", metavar="PATH",
                   help="print one file as it was (relative to the task directory; secrets masked)")
    p.add_argument("--materialize", nargs="?", const=True, default=None, metavar="DIR",
                   help="write the version's files exactly into DIR (new or empty, outside the "
                        "workspace), or into a new directory under .clawback/previews/")
    p.add_argument("--smoke", action="store_true",
                   help="build the version's environment (cached, the live one untouched) and "
                        "report levels 1-3 of it in a temporary preview")
    p.add_argument("--cleanup", action="store_true",
                   help="remove the previews clawback materialised (and nothing else)")
    p.add_argument("--dry-run", action="store_true", help="with --cleanup: list, remove nothing")


def _check(args: argparse.Namespace) -> None:
    modes = [m for m in ("show", "materialize", "smoke") if getattr(args, m) not in (None, False)]
    if args.cleanup:
        if modes or args.task or args.version:
            raise BadInput("--cleanup takes no other option", "run `clawback preview --cleanup` alone")
        return
    if args.dry_run:
        raise BadInput("--dry-run goes with --cleanup", "run `clawback preview --cleanup --dry-run`")
    if not args.task or not args.version:
        raise BadInput("--task and --version are required",
                       "e.g. `clawback preview --task T01 --version 1.2.0`; "
                       "`clawback history --task T01` lists the versions")
    if args.show is not None and len(modes) > 1:
        raise BadInput("--show goes alone", "show a file, or materialise/smoke-test the version")


def run(args: argparse.Namespace) -> Outcome:
    from clawback import preview_render as out
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.preview import index, resolve, trees

    _check(args)
    ws = Workspace.discover(args.workspace)
    if args.cleanup:
        done = index.cleanup(ws, dry_run=args.dry_run)
        return Outcome(EXIT_OK, done, out.cleanup(done))
    res = resolve.resolve(ws, args.task, args.version)
    # --materialize without DIR (True): under .clawback/previews/; an empty DIR never gets here
    dest = args.materialize if isinstance(args.materialize, str) else None
    if args.show is not None:
        return _show(ws, res, args)
    if args.smoke:
        from tasks_lib.preview.smoke import smoke

        report = smoke(ws, res, dest, keep=args.materialize is not None)
        return Outcome(EXIT_OK if report.ok else EXIT_FAILED, report, out.smoke(report))
    if args.materialize is not None:
        made = trees.materialize(ws, res, dest)
        return Outcome(EXIT_OK, made, out.materialized(made))
    from tasks_lib.preview.summary import summarize

    summary = summarize(ws, res)
    if summary.problems and not args.json:
        print("\n".join(out.untrusted(summary.problems)), file=sys.stderr)
    return Outcome(EXIT_OK if summary.ok else EXIT_FAILED, summary, out.summary(summary))


def _show(ws, res, args: argparse.Namespace) -> Outcome:  # type: ignore[no-untyped-def]
    from clawback import preview_render as out
    from tasks_lib.core.filenames import shown
    from tasks_lib.preview.show import show

    found = show(ws, res, args.show)
    code = EXIT_OK if res.trusted else EXIT_FAILED
    if not args.json:
        if not res.trusted:
            print("\n".join(out.untrusted(res.problems)), file=sys.stderr)
        if found.masked:
            print(f"clawback preview: secret values masked in {shown(found.path)} "
                  f"({', '.join(found.masked)}); values are never shown", file=sys.stderr)
    if args.json:
        return Outcome(code, found, "")
    if sys.stdout.isatty():
        if found.binary:
            return Outcome(code, found, f"{shown(found.path)}: a binary file ({found.size} bytes, "
                                        f"{found.checksum}); not shown on a terminal: pipe it "
                                        "to a file for the exact bytes")
        return Outcome(code, found, out.terminal_text(found.data.decode("utf-8", "surrogateescape")))
    sys.stdout.flush()
    sys.stdout.buffer.write(found.data)
    sys.stdout.buffer.flush()
    return Outcome(code, found, "")
