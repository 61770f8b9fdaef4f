"""A real ``prefect server start`` on loopback for end-to-end tests, and a small REST reader.

Started with its own PREFECT_HOME (SQLite) on a free port; ended by its pid (its process group),
never by name. The scheduler service loops every 2 s so a served deployment's first scheduled
runs exist within seconds (the default loop is 60 s); nothing else differs from an operator's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
               PREFECT_SERVER_LOGGING_LEVEL="WARNING")
    return env


@contextmanager
def running_server(home: Path, timeout_s: float = 120) -> Iterator[str]:
    """Yield the API URL of a fresh server; stop it (and only it) afterwards."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=server_env(home), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited {proc.returncode}: "
                                   f"{(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prefect server did not answer /api/health in time")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 15) -> None:
    """TERM the process group we started, then KILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(5)


class Api:
    """The few REST reads the end-to-end tests need (no Prefect client settings involved)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def deployment_id(self, name: str) -> str | None:
        r = httpx.get(f"{self.url}/deployments/name/{name}", timeout=10)
        return r.json()["id"] if r.status_code == 200 else None

    def runs(self, deployment: str) -> list[dict[str, Any]]:
        dep = self.deployment_id(deployment)
        if dep is None:
            return []
        r = httpx.post(f"{self.url}/flow_runs/filter", timeout=10, json={
            "deployments": {"id": {"any_": [dep]}}, "sort": "EXPECTED_START_TIME_DESC",
            "limit": 200})
        r.raise_for_status()
        return r.json()

    def finished(self, deployment: str) -> list[dict[str, Any]]:
        return [run for run in self.runs(deployment)
                if run.get("state_type") in ("COMPLETED", "FAILED", "CRASHED")]
