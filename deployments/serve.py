"""Serve clawback's flows for one workspace from one process, on the Prefect server in
``PREFECT_API_URL``: the scheduled ``health`` deployment (automatic rollback on) and the
``rollback``, ``recover``, ``snapshot`` and ``sync-registry`` deployments it and the UI start
runs of.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve --workspace ~/ws

Run it from the clawback checkout (the flows' entrypoints are paths relative to it). A breach
found by the health run is handed to the ``rollback`` deployment, which this same process runs.
Every run acts on that workspace only: a run whose ``workspace`` parameter names another is
refused (flows/confine.py).
The runner polls for due runs every ``PREFECT_RUNNER_POLL_FREQUENCY`` seconds; the default here
is 2 (Prefect's is 10), since it bounds how late a rollback starts. SIGTERM or Ctrl-C stops
serving; runs already started finish under the runner's shutdown.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def build(workspace: str, health_interval_s: float = 300, *, auto_rollback: bool = True,
          promote_after: int = 3, min_interval_minutes: float = 60) -> list[Any]:
    """The runner deployments for ``workspace`` (absolute path)."""
    from flows.prefect_flows import (
        health_flow,
        recover_flow,
        rollback_flow,
        snapshot_flow,
        sync_registry_flow,
    )

    ws = {"workspace": workspace}
    return [
        health_flow.to_deployment(
            name="health", interval=health_interval_s,
            parameters={**ws, "auto_rollback": auto_rollback, "promote_after": promote_after,
                        "min_interval_minutes": min_interval_minutes},
            description="Scheduled health check of every active task; a breach is rolled back."),
        rollback_flow.to_deployment(name="rollback", parameters=ws,
                                    description="Roll a task back to an earlier snapshot."),
        recover_flow.to_deployment(name="recover", parameters=ws,
                                   description="Disaster recovery of one task."),
        snapshot_flow.to_deployment(name="snapshot", parameters=ws,
                                    description="Snapshot a task version, or a hotfix of a stable one."),
        sync_registry_flow.to_deployment(
            name="sync-registry", parameters=ws,
            description="Reconcile the registry with the configs' versions and the tags."),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--workspace", default=os.environ.get("CLAWBACK_WORKSPACE"), required=False)
    p.add_argument("--health-interval", type=float, default=300, metavar="SECONDS")
    p.add_argument("--promote-after", type=int, default=3, metavar="K")
    p.add_argument("--min-interval", type=float, default=60, metavar="MINUTES")
    p.add_argument("--no-auto-rollback", action="store_true")
    args = p.parse_args(argv)
    if not args.workspace:
        p.error("--workspace (or CLAWBACK_WORKSPACE) is required")
    if not os.environ.get("PREFECT_API_URL"):
        p.error("PREFECT_API_URL is not set: serving needs a running Prefect server "
                "(prefect server start)")
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from tasks_lib.core.errors import ClawbackError
    from tasks_lib.core.workspace import Workspace

    try:
        root = str(Workspace.discover(args.workspace).root)
    except ClawbackError as exc:
        p.error(str(exc))
    # the runner's flow-run processes inherit this: a run asking for another workspace is
    # refused (flows/confine.py)
    os.environ["CLAWBACK_WORKSPACE"] = root
    from prefect import serve

    serve(*build(root, args.health_interval, auto_rollback=not args.no_auto_rollback,
                 promote_after=args.promote_after, min_interval_minutes=args.min_interval),
          print_starting_message=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
