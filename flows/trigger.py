"""Handing an automatic rollback to the ``rollback`` deployment (docs/design.md, "Health"), so it
runs on a worker of the workspace's machine as its own flow run, under its concurrency limit,
visible in the UI. Imported only inside a flow run (it imports Prefect).

Exactly one rollback per breach: the flow run is created with an idempotency key naming the task,
the breached version and when that version started, so every health run that sees the same breach
(the next one may come while the rollback still runs) gets the same flow run back instead of a
new one. A version released again later starts anew and gets a new key.

Routing: a health run of the deployment ``health/<machine>`` hands its breach to
``rollback/<machine>``, the same machine's worker (``clawback serve`` deploys one set per
machine; docs/scale-out.md), and one of ``python -m deployments.serve`` (deployment
``health/health``) to ``rollback/rollback``. A health run that is not a deployment's (the CLI, on
whatever machine it was typed) rolls back in its own process, on its own machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flows.steps import workspace_key

ROLLBACK_DEPLOYMENT = "rollback/rollback"
POLL_S = 1.0


@dataclass(frozen=True)
class Started:
    flow_run_id: str
    name: str
    url: str | None
    ours: bool = True   # False: an earlier health run started it for the same breach


@dataclass(frozen=True)
class Finished:
    state: str            # COMPLETED | FAILED | CRASHED | CANCELLED | … or RUNNING on timeout
    message: str
    final: bool


def breach_key(workspace_root: str, breach: str) -> str:
    """The idempotency key of a breach (tasks_lib.health.history.breach_id) in this workspace."""
    return f"clawback-breach-{workspace_key(workspace_root)}-{breach}"


def rollback_deployment() -> str:
    """The rollback deployment on this health run's machine (see Routing above)."""
    from prefect.runtime import deployment

    name = deployment.name
    return f"rollback/{name}" if name and name != "health" else ROLLBACK_DEPLOYMENT


def deployment_usable(name: str | None = None) -> tuple[bool, str]:
    """Can a breach be handed to ``name`` (default: rollback_deployment())? Only on a real server
    (an embedded temporary one has no workers) where the deployment exists. The reason says why
    not."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return False, "Prefect runs on its temporary local server (no workers)"
    if name is None:
        from prefect.runtime import deployment

        if deployment.id is None:  # the CLI on some machine: which worker is on it is unknown
            return False, "this health run is not a deployment's, so it rolls back on its own machine"
        name = rollback_deployment()
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(name)
    except ObjectNotFound:
        return False, f"no deployment {name} on the Prefect server"
    return True, ""


def start_rollback(parameters: dict[str, Any], key: str, name: str | None = None) -> Started:
    """Create the rollback flow run for this breach (on ``name``, default rollback_deployment()),
    or get back the one created for it before."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    run = run_deployment(name or rollback_deployment(), parameters=parameters, timeout=0,
                         idempotency_key=key, tags=["clawback", "automatic"])
    ours = True
    if run.parent_task_run_id is not None:
        with get_client(sync_client=True) as client:
            parent = client.read_task_run(run.parent_task_run_id)
        ours = str(parent.flow_run_id) == str(flow_run.id)
    return Started(str(run.id), run.name, run_url(str(run.id)), ours)


def run_url(flow_run_id: str) -> str | None:
    from prefect.utilities.urls import url_for

    try:
        url = url_for("flow-run", obj_id=flow_run_id)
    except ValueError:  # no UI URL configured
        return None
    return url if url and url.startswith(("http://", "https://")) else None


def current_run_url() -> str | None:
    """The UI link of the flow run under way; None without a UI (Prefect's temporary server)."""
    from flows.steps import flow_run_id

    run_id = flow_run_id()
    return run_url(run_id) if run_id else None


def wait(runs: list[Started], timeout_s: float, sleep: Any = time.sleep) -> dict[str, Finished]:
    """The final state of each run, or its state when ``timeout_s`` ran out."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    found: dict[str, Finished] = {}
    with get_client(sync_client=True) as client:
        while True:
            for run in runs:
                if run.flow_run_id in found and found[run.flow_run_id].final:
                    continue
                state = client.read_flow_run(run.flow_run_id).state
                found[run.flow_run_id] = Finished(
                    state.type.value if state else "PENDING",
                    (state.message or "") if state else "", bool(state and state.is_final()))
            if all(f.final for f in found.values()) or time.monotonic() >= deadline:
                return found
            sleep(POLL_S)
