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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


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
def running_server(home: Path, timeout_s: float = 120,
                   extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the API URL of a fresh server; stop it (and only it) afterwards. ``extra_env``
    (e.g. PREFECT_API_DATABASE_CONNECTION_URL) is added to its environment."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
    url = f"http://127.0.0.1:{port}/api"
    # ``--port`` alone leaves the UI calling the default http://127.0.0.1:4200/api: point it here
    env = {**server_env(home), "PREFECT_SERVER_UI_API_URL": url, **(extra_env or {})}
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
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


# -- clawback serve, as an operator runs it ------------------------------------------------------
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """Our environment without the caller's PREFECT_* settings, with its own PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@contextmanager
def clawback_serve(args: Sequence[str], env: Mapping[str, str], log: Path, timeout_s: float = 300,
                   wait: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """``clawback serve ARGS`` (until it says it is ready, unless not ``wait``); stopped by its
    process group afterwards."""
    proc = subprocess.Popen([sys.executable, "-m", "clawback", "serve", *args], env=dict(env),
                            cwd=log.parent, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if wait:
            serve_ready(proc, log, timeout_s)
        yield proc
    finally:
        stop_group(proc)


def serve_ready(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 300) -> None:
    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        return "Ctrl-C or SIGTERM stops it" in log.read_text()

    wait_for(f"clawback serve to be ready ({log})", ready, timeout_s)


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """An API call retried while the server answers 503 (SQLite busy), as Prefect's client does."""
    resp = httpx.request(method, url, timeout=10, **kw)
    for pause in (0.5, 1, 2, 4, 8):
        if resp.status_code != 503:
            break
        time.sleep(pause)
        resp = httpx.request(method, url, timeout=10, **kw)
    resp.raise_for_status()
    return resp


def create_run(url: str, deployment: str, parameters: dict[str, Any]) -> str:
    """A flow run of ``deployment`` ("flow/name") created as the UI's Run button does."""
    dep = request("GET", f"{url}/deployments/name/{deployment}").json()
    return request("POST", f"{url}/deployments/{dep['id']}/create_flow_run",
                   json={"parameters": parameters}).json()["id"]


def flow_run(url: str, run_id: str) -> dict[str, Any]:
    return request("GET", f"{url}/flow_runs/{run_id}").json()


def finished(url: str, run_id: str, timeout_s: float) -> dict[str, Any]:
    """The flow run once it is in a final state."""
    def final() -> dict[str, Any] | None:
        run = flow_run(url, run_id)
        return run if run["state_type"] in FINAL else None

    return wait_for(f"flow run {run_id} to finish", final, timeout_s)


@contextmanager
def deployments_served(ws_root: Path, url: str, tmp: Path, health_interval_s: float,
                       **extra_env: str) -> Iterator[Callable[[], str]]:
    """``python -m deployments.serve`` (health/health, rollback/rollback, …) for the workspace on
    ``url``, stopped by its process group afterwards. Yields a function returning the end of the
    runner's log (for assertion messages)."""
    env = client_env(tmp / "serve-home", PREFECT_API_URL=url, PREFECT_RUNNER_POLL_FREQUENCY="1",
                     **extra_env)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--workspace", str(ws_root),
             "--health-interval", str(health_interval_s)], cwd=REPO, env=env,
            start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield lambda: log.read_text(errors="replace")[-3000:]
    finally:
        stop_group(proc)
