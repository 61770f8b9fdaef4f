"""How a flow run reaches the right machine when several share one Prefect server.

The rule (docs/scale-out.md): every machine that hosts tasks has a **name** (``--machine``,
default its host name). ``clawback serve`` on that machine deploys every flow of prefect.yaml as
``<flow>/<name>`` (e.g. ``rollback/host-b``), with that machine's workspace path as the
``workspace`` parameter, on the work queue ``<name>`` of the process pool ``clawback``, and runs
the one worker that polls that queue. So:

- a run of ``rollback/host-b`` (UI, ``prefect deployment run``, REST) can only be taken by host
  B's worker and only acts on host B's workspace: nothing to choose per run but the task and
  version;
- each machine's health check is its own scheduled deployment (``health/host-b``), and a breach it
  finds is handed to ``rollback/host-b`` (flows/trigger.py);
- stopping one machine pauses only its queue: runs for it wait, the others go on.

Also here: the queue's pause marker (a stop pauses the queue; the next start resumes it only if
clawback paused it) and the guard against two workspaces taking one name.
"""

from __future__ import annotations

import copy
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployments.api import Api
from tasks_lib.core.errors import BadInput, Conflict

POOL = "clawback"
FLOWS = ("health", "rollback", "recover", "snapshot", "init", "sync-registry")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MARKER = "paused-queue"      # in .clawback/prefect: the queue our last stop paused


def machine_name(given: str | None) -> str:
    """``--machine``, else this host's short name (made valid): the name of its deployments and
    its work queue."""
    if given is not None:
        if not NAME_RE.match(given):
            raise BadInput(f"invalid machine name {given!r}",
                           "use letters, digits, '.', '_' or '-' (at most 63), e.g. host-b")
        return given
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-._")
    return name[:63] or "local"


# job variables a run may not set: its environment (CLAWBACK_WORKSPACE names the one workspace a
# machine's runs act on), its command (anything at all) and its working directory
LOCKED = ("env", "command", "working_dir")


def locked_template() -> dict[str, Any]:
    """Prefect's process-pool job template without the job variables in LOCKED, and no others
    accepted: the server refuses (422) a run that asks for its own environment, command or
    working directory (Prefect would merge a run's ``env`` into any template, and an
    environment is code: PYTHONPATH), so a flow run's are the worker's, and flows/confine.py
    holds it to the worker's workspace."""
    from prefect.workers.process import ProcessWorker  # only here: ~2 s to import

    template = copy.deepcopy(ProcessWorker.get_default_base_job_template())
    for key in LOCKED:
        template["variables"]["properties"].pop(key, None)
    template["variables"]["additionalProperties"] = False
    template["job_configuration"].update({"env": {}, "command": None, "working_dir": None})
    return template


def _unlocked(pool: dict[str, Any]) -> bool:
    template = pool.get("base_job_template") or {}
    variables = template.get("variables") or {}
    props = variables.get("properties") or {}
    config = template.get("job_configuration") or {}
    return variables.get("additionalProperties") is not False or \
        any(k in props or "{{" in str(config.get(k, "")) for k in LOCKED)


def ensure_queue(api: Api, machine: str, home: Path, say: Callable[[str], None]) -> None:
    """The pool ``clawback`` (with the locked job template) and the queue ``machine`` exist, and
    the queue runs unless someone other than clawback paused it."""
    pool = api.work_pool(POOL)
    if pool is None:
        api.create_process_pool(POOL, locked_template())
    elif _unlocked(pool):
        api.set_pool_template(POOL, locked_template())
        say(f"  locked the job template of the work pool {POOL} (a run can no longer set its "
            "environment, command or working directory)")
    queue = api.queue(POOL, machine)
    marker = home / MARKER
    if queue is None:
        api.create_queue(POOL, machine, f"flow runs for the machine {machine}")
    elif queue.get("is_paused"):
        if marker.is_file() and marker.read_text().strip() == machine:
            api.set_paused(POOL, machine, False)
            say(f"  resumed the work queue {machine} (paused by the last stop)")
        else:
            say(f"  warning: the work queue {machine} is paused (not by clawback serve); its "
                f"runs wait until you resume it: prefect work-queue resume {machine} --pool {POOL}")
    marker.unlink(missing_ok=True)


def pause_queue(api: Api, machine: str, home: Path) -> None:
    """Stop handing out this machine's runs; remember that clawback did it."""
    api.set_paused(POOL, machine, True)
    (home / MARKER).write_text(machine + "\n")


def refuse_foreign(api: Api, machine: str, workspace: Path) -> None:
    """Two workspaces must not share a machine name: the second deploy would take over the
    first one's deployments (exit 3)."""
    found = api.deployment("health", machine)
    theirs = ((found or {}).get("parameters") or {}).get("workspace")
    if theirs and theirs != str(workspace):
        raise Conflict(f"health/{machine} on {api.url} serves another workspace ({theirs})",
                       "give this one its own name: --machine NAME (or delete those "
                       "deployments if that workspace is gone)")
