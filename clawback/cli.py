"""The ``clawback`` command: parse, call, render, exit code (SPEC §6). No domain logic here.

Read-only commands (status, history, verify-snapshot) never import Prefect; mutating commands
validate their input first (instantly, before any orchestrator starts), then run their flow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clawback import render
from tasks_lib.core import filenames
from tasks_lib.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ClawbackError, exit_code_for

EXIT_CODES = """exit codes:
  0  success
  1  the operation ran and failed, or found a problem (verification failed, unhealthy)
  2  bad input (unknown task or version, invalid id, malformed file)
  3  refused because of a conflict (lock held, tag exists, secret found, state would be lost)"""


@dataclass(frozen=True)
class Outcome:
    code: int
    data: Any          # the --json document's "result"
    text: str          # what a person reads


# -- commands ------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    from flows import runtime
    from flows.init import run_init

    result = runtime.run("init", run_init, workspace=str(ws.root))
    return Outcome(EXIT_OK if not result.failures else EXIT_FAILED, result, render.init(result))


def cmd_snapshot(args: argparse.Namespace) -> Outcome:
    from tasks_lib import snapshot
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    params = dict(task_id=args.task, version=args.version, bump=args.bump, message=args.message,
                  push=args.push, allow_secrets=list(args.allow_secret),
                  allow_shared_install=args.allow_shared_install)
    # refusals (bad input, existing tag, plaintext secret) answer at once, before Prefect starts
    plan = snapshot.prepare(ws, snapshot.SnapshotRequest(**{**params, "allow_secrets": tuple(args.allow_secret)}))
    snapshot.scan_secrets(plan)
    from flows import runtime
    from flows.snapshot import run_snapshot

    result = runtime.run("snapshot", run_snapshot, workspace=str(ws.root), **params)
    code = EXIT_FAILED if result.push_error else EXIT_OK
    return Outcome(code, result, render.snapshot(result))


def cmd_rollback(args: argparse.Namespace) -> Outcome:
    from tasks_lib import rollback
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    req = rollback.RollbackRequest(args.task, args.to, args.from_version, args.reason,
                                   allow_shared_install=args.allow_shared_install)
    plan = rollback.preflight(ws, req)  # refusals answer at once, before Prefect starts
    if args.dry_run:
        preview = rollback.dry_run(plan)
        return Outcome(EXIT_OK, preview, render.rollback_plan(preview))
    from flows import runtime
    from flows.rollback import run_rollback

    result = runtime.run("rollback", run_rollback, workspace=str(ws.root), task_id=args.task,
                         to_version=args.to, from_version=args.from_version, reason=args.reason,
                         grace_s=args.grace, allow_shared_install=args.allow_shared_install)
    return Outcome(EXIT_OK, result, render.rollback(result))


def cmd_recover(args: argparse.Namespace) -> Outcome:
    from tasks_lib import rollback
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    rollback.preflight(ws, rollback.RollbackRequest(args.task, args.target_version, None, args.reason,
                                                    repair=True,
                                                    allow_shared_install=args.allow_shared_install))
    from flows import runtime
    from flows.recover import run_recover

    result = runtime.run("recover", run_recover, workspace=str(ws.root), task_id=args.task,
                         target_version=args.target_version, reason=args.reason,
                         allow_shared_install=args.allow_shared_install)
    text = (render.rollback(result.rollback) + "\n"
            + render.levels(args.task, result.rollback.to_version, result.levels)
            + f"\ntime to recovery {result.seconds:.2f}s; report: {result.report}")
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, text)


def cmd_verify_rollback(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.rollback import verify_live

    ws = Workspace.discover(args.workspace)
    levels = verify_live(ws, args.task, args.expected)
    ok = all(lv.ok for lv in levels)
    data = {"task": args.task, "expected": args.expected, "ok": ok, "levels": levels}
    return Outcome(EXIT_OK if ok else EXIT_FAILED, data, render.levels(args.task, args.expected, levels))


def cmd_start(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.deps import envs as deps
    from tasks_lib.runtime import process

    ws = Workspace.discover(args.workspace)
    task = ws.task(args.task)
    py = deps.current_python(ws.state_dir, task.id) if task.settings.python == "venv" else None
    state = process.start(ws, task, py)
    return Outcome(EXIT_OK, state, f"started {task.id} {task.version}" + (f" (pid {state.pid})" if state.pid else ""))


def cmd_stop(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.runtime import process

    ws = Workspace.discover(args.workspace)
    task = ws.task(args.task)
    result = process.stop(ws, task, timeout=args.timeout)
    text = (f"stopped {task.id} (pid {result.pid}, {result.how})" if result.was_running
            else f"{task.id} was not running ({result.how})")
    return Outcome(EXIT_OK, result, text)


def cmd_verify_snapshot(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.verify_snapshot import verify_snapshot

    ws = Workspace.discover(args.workspace)
    ws.task(args.task, active=False)
    result = verify_snapshot(ws, args.task, args.version)
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, render.verification(result))


STATUS_HELP = """An operation killed midway (SIGKILL, power loss) leaves its journal in .clawback/journal/.
status tries that task's lock without waiting: if it is held, the operation is still running and
is only reported; if it is free, its process is gone, and status undoes what it changed (files,
registry, environment, commit, tag; restarts the old version if it was running), as the next
snapshot or rollback would, and records it in the audit log. With --read-only it only reports.
Exit 1 while an undo could not complete: its journal is kept as <name>.failed.json; fix what
it names by hand, then delete it.

"""


def cmd_status(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.status import workspace_status

    ws = Workspace.discover(args.workspace)
    if args.task:
        ws.task(args.task, active=False)  # that task's own problem: exit 2
    rows = workspace_status(ws, repair=not args.read_only, only=args.task)
    if args.task:
        rows = [r for r in rows if r.id == args.task]
    # an undo that could not complete, or a registry entry that cannot be used as it stands
    problem = any(i.problem for r in rows for i in r.interrupted) or any(r.error for r in rows)
    return Outcome(EXIT_FAILED if problem else EXIT_OK, {"workspace": str(ws.root), "tasks": rows},
                   render.status(rows))


def cmd_history(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.status import task_history

    ws = Workspace.discover(args.workspace)
    result = task_history(ws, args.task)
    if result.error and not args.json:
        print(f"clawback history: {result.error}", file=sys.stderr)
    return Outcome(EXIT_BAD_INPUT if result.error else EXIT_OK, result, render.history(result))


def cmd_health(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    if args.task is not None:
        ws.task(args.task)  # unknown or hostile: exit 2 before Prefect starts
    from flows import runtime
    from flows.health import run_health

    result = runtime.run("health", run_health, workspace=str(ws.root), task_id=args.task,
                         auto_rollback=args.auto_rollback, min_interval_minutes=args.min_interval,
                         promote_after=args.promote_after,
                         errors_before_alert=args.errors_before_alert)
    return Outcome(EXIT_FAILED if result.unhealthy else EXIT_OK, result, render.health(result))


def cmd_promote(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core import ids
    from tasks_lib.core.workspace import Workspace

    ws = Workspace.discover(args.workspace)
    ws.task(args.task)
    version = ids.version(args.version)
    from flows import runtime
    from flows.promote import run_promote

    result = runtime.run("promote", run_promote, workspace=str(ws.root), task_id=args.task,
                         version=version, force=args.force, reason=args.reason)
    return Outcome(EXIT_OK, result, render.promote(result))


def cmd_hook(args: argparse.Namespace) -> Outcome:
    from tasks_lib.core.workspace import Workspace
    from tasks_lib.secrets.hooks import staged_secrets

    ws = Workspace.discover(args.workspace)
    result = staged_secrets(ws, os.environ.get("GIT_INDEX_FILE"))  # the index being committed
    text = render.staged_secrets(result)
    if not result.ok and not args.json:
        print(text, file=sys.stderr)  # git shows a hook's stderr
        text = ""
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, text)


def cmd_demo(args: argparse.Namespace) -> Outcome:
    from clawback.demo.story import run_demo

    result = run_demo(keep=args.keep, out=sys.stderr if args.json else sys.stdout)
    return Outcome(EXIT_OK if result.ok else EXIT_FAILED, result, render.demo(result))


def cmd_serve(args: argparse.Namespace) -> Outcome:
    from deployments.local import Options, serve

    code = serve(Options(args.workspace, args.port, args.health_interval, args.machine,
                         args.drain_timeout), out=sys.stderr if args.json else sys.stdout)
    return Outcome(code, {"exit_code": code}, "")


SHARED_HELP = ("the task's python is a shared interpreter (a path): allow changing its packages "
               "(journaled, undone on failure); without it such a change is refused (exit 3)")


# -- parser --------------------------------------------------------------------------------
def _minutes(text: str) -> float:
    """A number of minutes from 0 to a year (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 525_600:  # (also refuses nan)
        raise argparse.ArgumentTypeError(f"expected minutes from 0 to 525600, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A number of seconds from 0 to a day."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, got {text!r}")
    return value


def _count(text: str) -> int:
    """A whole number of at least 0 (argparse turns the error into exit 2 with usage)."""
    if not text.isdigit() or len(text) > 6:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 999999, got {text!r}")
    return int(text)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="the workspace (default: $CLAWBACK_WORKSPACE or the git top level here)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="clawback", parents=[common],
        description="Version control and disaster recovery for OpenClaw task workspaces.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], Outcome], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    add("init", cmd_init, "adopt a workspace: .gitignore, .clawback/, tag and mark stable current versions")

    p = add("snapshot", cmd_snapshot,
            "bump a task's version, lock its dependencies, commit only its paths, tag it with a manifest")
    p.add_argument("--task", required=True, help="task id, e.g. T01")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--version", help="the new version (default: the current one if never snapshotted, else a patch bump)")
    g.add_argument("--bump", choices=["patch", "minor", "major"])
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

    p = add("rollback", cmd_rollback,
            "stop, back up, restore files, config, registry and dependencies, verify, start; undone on failure")
    p.add_argument("--task", required=True)
    p.add_argument("--to", required=True, metavar="VERSION", help="the earlier version, e.g. 1.2.0")
    p.add_argument("--from", dest="from_version", metavar="VERSION",
                   help="refuse unless the task is at this version now")
    p.add_argument("--reason", default="", help="why (kept in the registry, tag and audit log)")
    p.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    p.add_argument("--grace", type=_seconds, default=2.0, metavar="SECONDS",
                   help="the restarted task must stay up this long (default 2)")
    p.add_argument("--allow-shared-install", action="store_true", help=SHARED_HELP)

    p = add("recover", cmd_recover,
            "disaster recovery: back up, roll back, verify the live task at four levels, report")
    p.add_argument("--task", required=True)
    p.add_argument("--target-version", required=True, metavar="VERSION",
                   help="an earlier version, or the current one to repair a damaged task in place "
                        "(files, registry entry and environment restored from its snapshot)")
    p.add_argument("--reason", default="")
    p.add_argument("--allow-shared-install", action="store_true", help=SHARED_HELP)

    p = add("verify-rollback", cmd_verify_rollback,
            "the four verification levels (files, config, smoke, readiness) against the live task")
    p.add_argument("--task", required=True)
    p.add_argument("--expected", required=True, metavar="VERSION")

    p = add("start", cmd_start, "start a task as rollback does (its environment, a pidfile)")
    p.add_argument("--task", required=True)
    p = add("stop", cmd_stop, "stop a task: TERM its process group, wait, KILL")
    p.add_argument("--task", required=True)
    p.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS")

    p = add("verify-snapshot", cmd_verify_snapshot,
            "check a stored version: tag, commit, checksums of git's content, manifest integrity")
    p.add_argument("--task", required=True)
    p.add_argument("--version", required=True)

    p = add("status", cmd_status, "every task: version, stable marks, running or not, drift; "
            "undoes operations that were killed midway")
    p.add_argument("--task", help="only this task")
    p.add_argument("--read-only", action="store_true",
                   help="only report operations that were killed midway; do not undo them")
    p.epilog = STATUS_HELP + EXIT_CODES

    p = add("history", cmd_history, "a task's versions, tags, rollbacks: who, when, why")
    p.add_argument("--task", required=True)

    p = add("health", cmd_health,
            "error rate of each task's current version (breach above the threshold with enough "
            "runs), process, files, packages, env vars; exit 1 if any task is unhealthy")
    p.add_argument("--task", help="one task (default: every active task)")
    p.add_argument("--auto-rollback", action="store_true",
                   help="roll a breached task back to its newest stable, non-quarantined older "
                        "version; escalate when there is none or one ran within --min-interval")
    p.add_argument("--min-interval", type=_minutes, default=60, metavar="MINUTES",
                   help="at most one automatic rollback per task in this time (default 60)")
    p.add_argument("--promote-after", type=_count, default=0, metavar="K",
                   help="mark the running version stable after K consecutive healthy checks "
                        "(inconclusive ones do not break the streak; default 0: never)")
    p.add_argument("--errors-before-alert", type=_count, default=3, metavar="N",
                   help="escalate (audit entry and alert) when the health source could not be "
                        "read N checks in a row (default 3)")

    p = add("promote", cmd_promote,
            "mark a version stable: automatic rollback only targets stable, non-quarantined versions")
    p.add_argument("--task", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--force", action="store_true",
                   help="promote a quarantined version (one rolled back from), lifting the quarantine")
    p.add_argument("--reason", default="")

    p = add("hook", cmd_hook, "the checks the git hooks installed by init run")
    p.add_argument("name", choices=["pre-commit"])

    p = add("serve", cmd_serve, "run everything on this machine: a Prefect server (started "
            "unless one answers), the deployments of prefect.yaml and a worker; Ctrl-C stops it")
    p.add_argument("--port", type=int, default=4200, help="the local server's port (default 4200)")
    p.add_argument("--health-interval", type=float, metavar="SECONDS",
                   help="seconds between health checks (default: prefect.yaml's 300)")
    p.add_argument("--machine", metavar="NAME", help="this machine's name among those sharing "
                   "one server: its deployments are <flow>/NAME on work queue NAME (default: "
                   "the host name)")
    p.add_argument("--drain-timeout", type=float, default=120, metavar="SECONDS",
                   help="on stop, how long flow runs in flight may take to finish (default 120)")

    p = add("demo", cmd_demo, "the whole story on a throwaway workspace (embedded Prefect, offline)")
    p.add_argument("--keep", action="store_true", help="keep the demo workspace for a look around")
    return parser


# -- entry point ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.json = getattr(args, "json", False)
    try:
        outcome = args.handler(args)
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
