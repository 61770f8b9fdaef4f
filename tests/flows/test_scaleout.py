"""Scale-out, for real: one Prefect server on PostgreSQL and two machines, simulated
as two clones of one origin workspace, each served by its own ``clawback serve --machine host-X``
against that server (deployments ``<flow>/host-X`` on the work queue ``host-X``: the routing of
docs/scale-out.md). A breach on host B: its health run hands the rollback to ``rollback/host-b``,
host B's worker runs it, and only clone B changes. Prints the time from the health run's creation
to T01 running 1.2.0 on host B."""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from flows.init import run_init
from flows.promote import run_promote
from flows.recover import run_recover
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process
from tests.health.test_health_cli import runs
from tests.pg import postgres
from tests.prefect_cli import (
    Api,
    clawback_serve,
    client_env,
    create_run,
    finished,
    running_server,
    serve_ready,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A Prefect server whose database is PostgreSQL, for the module."""
    with postgres() as db, running_server(
            tmp_path_factory.mktemp("prefect-pg"), timeout_s=240,
            extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": db}) as url:
        yield url


def machine(origin: Workspace, root: Path) -> Workspace:
    """A machine's clone of the origin: adopted, its environment built, 1.2.0 stable, T01
    running its current version (1.3.0)."""
    subprocess.run(["git", "clone", "-q", str(origin.root), str(root)], check=True)
    ws = Workspace(root.resolve())
    run_init(str(ws.root))
    run_recover(str(ws.root), "T01", "1.3.0")            # builds 1.3.0's environment here
    run_promote(str(ws.root), "T01", "1.2.0")
    process.start(ws, ws.task("T01"), deps.current_python(ws.state_dir, "T01"))
    return ws


def looks(ws: Workspace) -> dict[str, object]:
    """What a rollback on another machine must leave alone."""
    state = process.run_state(ws, ws.task("T01"))
    return {"version": ws.task("T01").version, "pid": state.pid, "running": state.running,
            "head": ws.git.out("rev-parse", "HEAD"),
            "registry": ws.registry_path.read_bytes()}


@pytest.fixture
def machines(story, tmp_path):  # noqa: ANN001, ANN201
    """Host A and host B; their tasks are stopped afterwards, whatever happened."""
    origin, _ = story
    made: list[Workspace] = []
    try:
        for name in ("host-a", "host-b"):
            made.append(machine(origin, tmp_path / name))
        yield origin, made[0], made[1]
    finally:
        for ws in made:
            process.stop(ws, ws.task("T01"), timeout=5)


def test_a_breach_on_host_b_is_rolled_back_by_host_b_only(machines, server, tmp_path) -> None:
    origin, a, b = machines
    before_a, before_b = looks(a), looks(b)
    origin_head = origin.git.out("rev-parse", "HEAD")
    logs = {name: tmp_path / f"serve-{name}.log" for name in ("host-a", "host-b")}
    with ExitStack() as stack:
        procs = {name: stack.enter_context(clawback_serve(
            ["--workspace", str(ws.root), "--machine", name, "--health-interval", "3600"],
            client_env(tmp_path / f"home-{name}", PREFECT_API_URL=server), logs[name],
            wait=False)) for name, ws in (("host-a", a), ("host-b", b))}
        for name, proc in procs.items():
            serve_ready(proc, logs[name])
        assert "(PREFECT_API_URL, running)" in logs["host-b"].read_text()

        runs(b.root / "tasks/T01/logs/runs.jsonl", ok=0, failed=15, version="1.3.0")
        started = time.monotonic()
        health = finished(server, create_run(server, "health/host-b", {}), 300)
        assert health["state_type"] == "COMPLETED", logs["host-b"].read_text()[-3000:]
        t01 = process.run_state(b, b.task("T01"))
        print(f"\nhealth run on host-b created -> T01 running 1.2.0 there: "
              f"{time.monotonic() - started:.1f} s")

        api = Api(server)
        (rollback,) = api.runs("rollback/host-b")
        assert rollback["state_type"] == "COMPLETED"
        assert rollback["work_queue_name"] == "host-b"
        assert rollback["parameters"]["workspace"] == str(b.root)
        assert rollback["parameters"]["to_version"] == "1.2.0"
        assert api.runs("rollback/host-a") == []
        assert rollback["id"] in logs["host-b"].read_text()           # host B's worker ran it
        assert rollback["id"] not in logs["host-a"].read_text()

        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            assert proc.wait(90) == 0, logs[name].read_text()[-3000:]
    assert httpx.get(f"{server}/health", timeout=5).json() is True    # not ours: still up

    assert b.task("T01").version == "1.2.0" and t01.running and t01.pid != before_b["pid"]
    assert looks(a) == before_a                                        # host A: untouched
    assert origin.git.out("rev-parse", "HEAD") == origin_head          # nothing pushed
