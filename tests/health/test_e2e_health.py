"""End to end on a real ``prefect server start``: the served, scheduled health
deployment finds a breach of T01 1.3.0, hands it to the rollback deployment exactly once, the task
runs 1.2.0 again, and the alert lands in a loopback sink. Prints breach → restored time. A run
of the served deployments for another workspace is refused."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from clawback.demo import sample
from clawback.sink import http_sink
from flows.promote import run_promote
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process
from tasks_lib.state.audit import AuditLog
from tests.conftest import tree
from tests.health.test_health_cli import runs
from tests.prefect_cli import (
    Api,
    create_run,
    deployments_served,
    finished,
    running_server,
    wait_for,
)

REPO = Path(__file__).resolve().parent.parent.parent
INTERVAL_S = 10

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("prefect")) as url:
        yield url


def count_grows(api: Api, deployment: str, by: int):  # noqa: ANN201
    seen = len(api.finished(deployment))
    return lambda: len(api.finished(deployment)) >= seen + by


def test_scheduled_health_rolls_a_breach_back_once_through_the_deployment(story, server, tmp_path) -> None:
    ws, old_pid = story
    run_promote(str(ws.root), "T01", "1.2.0")
    log = ws.root / "tasks/T01/logs/runs.jsonl"
    with http_sink() as (sink_url, alerts), \
            deployments_served(ws.root, server, tmp_path, INTERVAL_S, CLAWBACK_NOTIFY_URLS=sink_url) as serve_log:
        api = Api(server)
        wait_for("a first health run", lambda: api.finished("health/health"), 120)
        assert not api.runs("rollback/rollback")                      # nothing to do yet
        breach_at = time.monotonic()
        runs(log, ok=0, failed=15, version="1.3.0", error="broker refused the order")

        def restored() -> bool:
            task = ws.task("T01")
            state = process.run_state(ws, task)
            return task.version == "1.2.0" and state.running and state.pid != old_pid

        wait_for("T01 restored to 1.2.0", restored, INTERVAL_S + 120, every=0.2)
        took = time.monotonic() - breach_at
        print(f"\nbreach written -> T01 running 1.2.0: {took:.1f} s "
              f"(health interval {INTERVAL_S} s, target <= {INTERVAL_S + 15} s)")
        # more health runs come and go: still exactly one rollback for this breach
        wait_for("two more health runs", count_grows(api, "health/health", 2), 4 * INTERVAL_S + 60)
        rollbacks = api.runs("rollback/rollback")
        assert [r["state_type"] for r in rollbacks] == ["COMPLETED"], serve_log()
        assert rollbacks[0]["parameters"]["to_version"] == "1.2.0"
    t01 = ws.load_registry().entry("T01")
    automatic = [h for h in t01["rollback_history"] if h["reason"].startswith("automatic:")]
    assert len(automatic) == 1 and automatic[0]["from_version"] == "1.3.0"
    assert any(s.get("quarantined") for s in t01["snapshots"] if s["version"] == "1.3.0")
    assert len(alerts) == 1, alerts
    assert "T01" in alerts[0]["title"] and "1.2.0" in alerts[0]["title"]
    assert "broker refused the order" in alerts[0]["message"]
    assert "/runs/flow-run/" in alerts[0]["message"]                 # the rollback run's link
    sent = [e for e in AuditLog(ws.state_dir).entries("T01") if e["action"] == "alert"]
    assert [e["result"] for e in sent] == ["sent"]
    assert "127.0.0.1" not in str(sent)                                # targets by label only


def test_a_rollback_run_that_fails_is_escalated_once_and_the_task_keeps_running(
        story, server, tmp_path) -> None:
    ws, old_pid = story
    run_promote(str(ws.root), "T01", "1.2.0")
    envs = deps.env_root(ws.state_dir, "T01")
    current = (envs / "current").resolve()
    for built in envs.iterdir():                       # 1.2.0's environment must be built again,
        if built.is_dir() and not built.is_symlink() and built != current:
            shutil.rmtree(built)
    empty = tmp_path / "no-wheels"                     # from a package source that has nothing
    empty.mkdir()
    with http_sink() as (sink_url, alerts), deployments_served(ws.root, server, tmp_path, INTERVAL_S, CLAWBACK_NOTIFY_URLS=sink_url,
            UV_FIND_LINKS=str(empty)) as serve_log:
        api = Api(server)
        before = len(api.runs("rollback/rollback"))
        wait_for("a first health run", count_grows(api, "health/health", 1), 120)
        runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=0, failed=15, version="1.3.0")
        wait_for("the alert", lambda: alerts, INTERVAL_S + 180)
        wait_for("two more health runs", count_grows(api, "health/health", 2), 4 * INTERVAL_S + 60)
        failed = api.runs("rollback/rollback")[: len(api.runs("rollback/rollback")) - before]
        assert [r["state_type"] for r in failed] == ["FAILED"], serve_log()
    assert len(alerts) == 1, alerts                                      # held: alerted once
    assert "automatic rollback 1.3.0 → 1.2.0 FAILED" in alerts[0]["title"]
    assert "clawback rollback --task T01 --to 1.2.0" in alerts[0]["message"]
    task = ws.task("T01")
    assert task.version == "1.3.0" and process.run_state(ws, task).pid == old_pid  # untouched
    escalations = [e for e in AuditLog(ws.state_dir).entries("T01") if e["action"] == "escalate"]
    assert len(escalations) == 1


def test_the_served_deployments_refuse_another_workspace(ws, server, tmp_path) -> None:
    """``python -m deployments.serve`` gives its runner's flow runs the served workspace: a
    snapshot run of it for another workspace is refused, and that workspace is untouched."""
    other = sample.make_workspace(tmp_path / "other").resolve()
    def untouched() -> tuple[object, ...]:   # the served one may get a scheduled health run
        return tree(other), ws.registry_path.read_bytes(), ws.git.out("rev-parse", "HEAD")

    before = untouched()
    with deployments_served(ws.root, server, tmp_path, 3600) as serve_log:
        def served() -> bool:
            found = httpx.get(f"{server}/deployments/name/snapshot/snapshot", timeout=10)
            return found.status_code == 200 and \
                found.json()["parameters"].get("workspace") == str(ws.root)

        wait_for("the served snapshot deployment", served, 120)
        run = finished(server, create_run(server, "snapshot/snapshot", {
            "workspace": str(other), "task_id": "T01", "bump": "patch"}), 120)
        assert run["state_type"] == "FAILED", serve_log()
        assert f"acts only on its worker's workspace {ws.root}" in run["state"]["message"]
    assert untouched() == before and not (other / ".clawback").exists()
