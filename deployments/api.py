"""The few Prefect REST calls ``clawback serve`` makes, over plain httpx.

Plain REST rather than Prefect's client: ``clawback serve`` is a supervisor of Prefect processes
(server, ``prefect deploy``, worker) and answers bad input in well under a second because it does
not import Prefect; every call names the URL it uses, so what it does is visible in the server's
API docs (``/docs``). Credentials for a protected server come from the usual Prefect variables,
with Prefect's precedence (tasks_lib/core/prefect_api.py: ``PREFECT_API_AUTH_STRING``, else
``PREFECT_API_KEY``). Like Prefect's own client, a call is retried
on 429/502/503/504: a Prefect server on SQLite answers 503 while its database is busy (a flow run
writing its task states), which is exactly when ``clawback serve`` pauses its queue.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from tasks_lib.core import prefect_api
from tasks_lib.core import time as clock

RETRY_CODES = {429, 502, 503, 504}
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a run whose state has no (readable) timestamp


def probe(api_url: str, timeout_s: float = 3) -> str:
    """What answers at ``api_url``: "prefect" (its /health says true), "other" (something that is
    not a Prefect API), or "nothing" (no connection)."""
    try:
        resp = prefect_api.health(api_url, timeout_s)
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.ConnectError):
            return "nothing"
        return "other"      # it accepted the connection but spoke no HTTP we understand
    try:
        return "prefect" if resp.status_code == 200 and resp.json() is True else "other"
    except ValueError:
        return "other"


def is_loopback(api_url: str) -> bool:
    return (urlsplit(api_url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def ui_url(api_url: str) -> str:
    """The UI's address: $PREFECT_UI_URL, else the API's address without ``/api``."""
    return os.environ.get("PREFECT_UI_URL") or api_url.rstrip("/").removesuffix("/api")


class Api:
    """Work pool, work queue, deployment and flow-run calls against one Prefect server."""

    def __init__(self, url: str, timeout_s: float = 15) -> None:
        self.url = url.rstrip("/")
        self._http = prefect_api.client(self.url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One call, retried with backoff (about 15 s in all) while the server says "later"."""
        resp = self._http.request(method, path, json=body)
        for pause in BACKOFF_S:
            if resp.status_code not in RETRY_CODES:
                break
            time.sleep(pause)
            resp = self._http.request(method, path, json=body)
        return resp

    def _get(self, path: str) -> dict[str, Any] | None:
        resp = self._request("GET", path)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def _send(self, method: str, path: str, body: Any) -> Any:
        resp = self._request(method, path, body)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    # -- work pool and queue ---------------------------------------------------------------
    def work_pool(self, pool: str) -> dict[str, Any] | None:
        return self._get(f"/work_pools/{pool}")

    def create_process_pool(self, pool: str, base_job_template: dict[str, Any]) -> None:
        resp = self._request("POST", "/work_pools/", {
            "name": pool, "type": "process", "base_job_template": base_job_template,
            "description": "clawback: one work queue per machine (docs/scale-out.md)"})
        if resp.status_code != 409:           # 409: created meanwhile by someone else
            resp.raise_for_status()

    def set_pool_template(self, pool: str, base_job_template: dict[str, Any]) -> None:
        self._send("PATCH", f"/work_pools/{pool}", {"base_job_template": base_job_template})

    def queue(self, pool: str, queue: str) -> dict[str, Any] | None:
        return self._get(f"/work_pools/{pool}/queues/{queue}")

    def create_queue(self, pool: str, queue: str, description: str) -> None:
        resp = self._request("POST", f"/work_pools/{pool}/queues",
                             {"name": queue, "description": description})
        if resp.status_code != 409:
            resp.raise_for_status()

    def set_paused(self, pool: str, queue: str, paused: bool) -> None:
        self._send("PATCH", f"/work_pools/{pool}/queues/{queue}", {"is_paused": paused})

    # -- deployments and runs --------------------------------------------------------------
    def deployment(self, flow: str, name: str) -> dict[str, Any] | None:
        return self._get(f"/deployments/name/{flow}/{name}")

    def set_interval(self, deployment: dict[str, Any], seconds: float) -> None:
        """Make the deployment's first schedule an interval of ``seconds`` (the server drops the
        runs it had scheduled from the old one)."""
        schedules = deployment.get("schedules") or []
        if schedules:
            self._send("PATCH", f"/deployments/{deployment['id']}/schedules/{schedules[0]['id']}",
                       {"schedule": {"interval": seconds}, "active": True})
        else:
            self._send("POST", f"/deployments/{deployment['id']}/schedules",
                       [{"schedule": {"interval": seconds}, "active": True}])

    def runs_in(self, pool: str, queue: str, states: list[str],
                since: datetime | None = None) -> list[dict[str, Any]]:
        """Flow runs of this queue in one of ``states`` (state types: PENDING, RUNNING, …),
        entered ``since`` then if given."""
        found = self._send("POST", "/flow_runs/filter", {
            "flow_runs": {"state": {"type": {"any_": states}},
                          "work_queue_name": {"any_": [queue]}},
            "work_pools": {"name": {"any_": [pool]}}, "limit": 50}) or []
        return [r for r in found if since is None
                or (clock.parse((r.get("state") or {}).get("timestamp")) or EPOCH) >= since]
