"""``clawback snapshot``: refusals answer at once, then the snapshot flow (flows/snapshot.py)."""

from __future__ import annotations

import argparse

from clawback import render
from clawback.commands.interface import SHARED_HELP, Outcome
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK

NAME = "snapshot"
HELP = ("bump a task's version (or make a hotfix release), lock its dependencies, commit only its "
        "paths, tag it with a manifest")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task id, e.g. T01")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--version", help="the new version (default: the current one if never snapshotted, else a patch bump)")
    g.add_argument("--bump", choices=["patch", "minor", "major"],
                   help="from a hotfix, bumps its base (1.2.0-hotfix-20260224 -> 1.2.1)")
    g.add_argument("--hotfix", action="store_true",
                   help="a hotfix release BASE-hotfix-YYYYMMDD (-2, -3… the same UTC day) of the "
                        "working tree, on top of a stable version the task is at")
    p.add_argument("--base", metavar="VERSION",
                   help="with --hotfix: the stable version it fixes (default: the current "
                        "version, or the base of the current hotfix)")
    p.add_argument("--message", "-m", default="", help="what changed (commit message and tag subject)")
    p.add_argument("--push", action="store_true", help="push the commit and tag to the default remote")
    p.add_argument("--allow-secret", action="append", default=[], metavar="SPELLING",
                   help="snapshot even though this finding holds a plaintext secret (repeatable; "
                        "the refusal prints each finding's spelling): a config key path "
                        "(data_sources.tushare.token), registry.KEY.PATH for the registry entry, "
                        "FILE:NAME (fetch.py:TUSHARE_TOKEN), FILE:KEY.PATH (secrets.yaml:db.password), "
                        "FILE:LINE, or FILE for a whole file; FILE relative to the task directory "
                        "or the workspace. A credential listed as an environment variable name "
                        "cannot be allowed")
    p.add_argument("--allow-shared-install", action="store_true", help=SHARED_HELP)


def run(args: argparse.Namespace) -> Outcome:
    from tasks_lib import snapshot
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    params = dict(task_id=args.task, version=args.version, bump=args.bump, message=args.message,
                  push=args.push, allow_secrets=list(args.allow_secret),
                  allow_shared_install=args.allow_shared_install, hotfix=args.hotfix,
                  base=args.base)
    # refusals (bad input, existing tag, plaintext secret) answer at once, before Prefect starts
    plan = snapshot.prepare(ws, snapshot.SnapshotRequest(**{**params, "allow_secrets": tuple(args.allow_secret)}))
    snapshot.scan_secrets(plan)
    from flows import runtime
    from flows.snapshot import run_snapshot

    result = runtime.run("snapshot", run_snapshot, workspace=str(ws.root), **params)
    code = EXIT_FAILED if result.push_error else EXIT_OK
    return Outcome(code, result, render.snapshot(result))
