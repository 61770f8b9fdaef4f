"""``clawback serve``, for real: it starts its own Prefect server on a free port,
deploys prefect.yaml, runs a worker; a rollback created through the REST API (as the UI does)
for another workspace is refused, touching neither, and one for the served workspace runs there;
SIGTERM while it runs stops serve in order: the rollback completes (T01 runs 1.2.0), exit 0,
server, worker and flow-run processes gone, and a flow run created while it stops is not taken;
the next start finds the same database, resumes the queue and runs that flow run. Bad input
answers at once with exit 2."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from clawback.demo import sample
from tasks_lib.core.workspace import Workspace
from tasks_lib.runtime import process
from tests.conftest import tree
from tests.prefect_cli import (
    clawback_serve,
    client_env,
    create_run,
    finished,
    flow_run,
    free_port,
    request,
    wait_for,
)

MACHINE = "solo"


def serving(ws: Workspace, port: int, tmp: Path, log: str) -> AbstractContextManager[Any]:
    return clawback_serve(["--workspace", str(ws.root), "--port", str(port), "--machine",
                           MACHINE, "--health-interval", "3600"],
                          client_env(tmp / "client-home"), tmp / log)


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawback", "serve", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def queue_paused(url: str) -> bool:
    return request("GET", f"{url}/work_pools/clawback/queues/{MACHINE}").json()["is_paused"]


def tasks_pids(ws: Workspace) -> set[int]:
    return {s.pid for t in ws.tasks() if t.active
            for s in [process.run_state(ws, t)] if s.pid}


@pytest.mark.slow
def test_serve_runs_a_rollback_then_stops_in_order_and_resumes(story, tmp_path) -> None:
    ws, old_pid = story
    other = sample.make_workspace(tmp_path / "other").resolve()    # another workspace, not served
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    begun = time.monotonic()
    with serving(ws, port, tmp_path, log.name) as proc:
        print(f"\nclawback serve started -> ready: {time.monotonic() - begun:.1f} s")
        text = log.read_text()
        assert f"Prefect UI   http://127.0.0.1:{port}" in text and "started here" in text
        health = request("GET", f"{url}/deployments/name/health/{MACHINE}").json()
        assert health["schedules"][0]["schedule"]["interval"] == 3600
        assert health["work_queue_name"] == MACHINE
        assert health["parameters"]["workspace"] == str(ws.root)
        twice = cli("--workspace", str(ws.root), env=client_env(tmp_path / "client-home"))
        assert twice.returncode == 3 and "already served" in twice.stderr   # one per workspace

        def untouched() -> tuple[object, ...]:          # T01 runs meanwhile: its logs change
            return tree(other), ws.registry_path.read_bytes(), ws.git.out("rev-parse", "HEAD")

        before = untouched()
        foreign = finished(url, create_run(url, f"rollback/{MACHINE}", {
            "workspace": str(other), "task_id": "T01", "to_version": "1.1.0"}), 120)
        assert foreign["state_type"] == "FAILED", log.read_text()[-3000:]
        assert f"acts only on its worker's workspace {ws.root}" in foreign["state"]["message"]
        assert untouched() == before and not (other / ".clawback").exists()
        # nor through the job variables a custom run may set: the pool's template is locked,
        # and the server refuses such a run when it is created
        marker = tmp_path / "job-variables-ran"
        dep = request("GET", f"{url}/deployments/name/rollback/{MACHINE}").json()
        for smuggle in ({"env": {"CLAWBACK_WORKSPACE": str(other)}},
                        {"env.PYTHONPATH": str(other)}, {"command": f"touch {marker}"},
                        {"working_dir": str(other)}):
            resp = httpx.post(f"{url}/deployments/{dep['id']}/create_flow_run", timeout=30,
                              json={"parameters": {"workspace": str(other), "task_id": "T01",
                                                   "to_version": "1.1.0"},
                                    "job_variables": smuggle})
            assert resp.status_code == 422, (smuggle, resp.text)
        assert untouched() == before and not (other / ".clawback").exists()
        assert not marker.exists()

        started = time.monotonic()
        run_id = create_run(url, f"rollback/{MACHINE}", {"task_id": "T01", "to_version": "1.2.0"})
        wait_for("the rollback to run",
                 lambda: flow_run(url, run_id)["state_type"] == "RUNNING", 120, every=0.2)
        ours = psutil.Process(proc.pid).children(recursive=True)   # server, worker, the run
        assert len([p for p in ours if "server" in p.cmdline()]) == 1, ours
        assert len([p for p in ours if "worker" in p.cmdline()]) == 1, ours

        proc.send_signal(signal.SIGTERM)                   # while the rollback runs
        stop_at = time.monotonic()
        wait_for("the work queue to be paused", lambda: queue_paused(url), 30, every=0.1)
        late = create_run(url, f"health/{MACHINE}", {})    # due while it stops: must wait
        assert proc.wait(90) == 0, log.read_text()[-3000:]
        took, gone_at = time.monotonic() - stop_at, time.time()
        print(f"rollback created -> SIGTERM while it runs -> clawback serve exited 0: "
              f"{time.monotonic() - started:.1f} s (of which stopping {took:.1f} s)")
        assert took < 60 and "flow run(s) in flight" in log.read_text()
        t01 = process.run_state(ws, ws.task("T01"))        # the rollback finished meanwhile
        assert ws.task("T01").version == "1.2.0" and t01.running and t01.pid != old_pid
        left = [p.pid for p in ours if p.is_running() and p.pid not in tasks_pids(ws)]
        assert not left                                    # no server, worker or flow run
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2)

    log = tmp_path / "serve-again.log"
    with serving(ws, port, tmp_path, log.name):            # the same database, next start
        assert "resumed the work queue solo" in log.read_text()
        assert flow_run(url, run_id)["state_type"] == "COMPLETED"
        run = finished(url, late, 180)
        assert run["state_type"] == "COMPLETED", log.read_text()[-3000:]
        assert datetime.fromisoformat(run["start_time"]).timestamp() > gone_at  # not taken before
    assert process.run_state(ws, ws.task("T01")).pid == t01.pid   # serve's stops leave it alone


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@contextmanager
def not_prefect() -> Iterator[int]:
    """An HTTP server on a free loopback port that is not Prefect (it answers 501 to all)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_serve_refuses_bad_input_with_exit_2_and_no_traceback(ws, tmp_path) -> None:
    env = client_env(tmp_path / "client-home")
    bad = cli("--workspace", str(tmp_path / "nope"), env=env)
    assert bad.returncode == 2 and "is not a directory" in bad.stderr
    with not_prefect() as port:
        busy = cli("--workspace", str(ws.root), "--port", str(port), env=env)
    assert busy.returncode == 2, busy.stderr
    assert f"port {port} on 127.0.0.1 is in use by something that is not a Prefect server" \
        in busy.stderr and "--port" in busy.stderr
    name = cli("--workspace", str(ws.root), "--machine", "host/b", env=env)
    assert name.returncode == 2 and "invalid machine name" in name.stderr
    for done in (bad, busy, name):
        assert "Traceback" not in done.stderr + done.stdout
    assert not (ws.root / ".clawback/prefect/server.log").exists()   # nothing was started
