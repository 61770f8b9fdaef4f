"""The flows on a real Prefect server (one session-scoped test harness): task runs per step,
artifacts, failure and undo inside a flow run, the CLI against the server, and the fallback when
the configured API is unreachable."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

import flows.snapshot as fs
from flows.prefect_flows import init_flow, snapshot_flow
from tasks_lib.core.errors import OperationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.audit import AuditLog
from tests.conftest import git

pytestmark = pytest.mark.prefect


def _api(coro_fn: Any) -> Any:
    from prefect.client.orchestration import get_client

    async def go() -> Any:
        async with get_client() as client:
            return await coro_fn(client)

    return asyncio.run(go())


def flow_run_of(run_id: str, expect: int = 0) -> tuple[str, list[str]]:
    """(state of the flow run, names of its task runs in order). Task runs reach the server
    asynchronously (through its events pipeline), so wait up to 60 s for ``expect`` of them."""
    import time

    deadline = time.monotonic() + 60
    while True:
        state, tasks = _flow_run_once(run_id)
        if len(tasks) >= expect or time.monotonic() > deadline:
            return state, tasks
        time.sleep(0.5)


def _flow_run_once(run_id: str) -> tuple[str, list[str]]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async def read(client: Any) -> tuple[str, list[str]]:
        run = await client.read_flow_run(run_id)
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC)
        return run.state.type.value, [t.name.rsplit("-", 1)[0] for t in tasks]

    return _api(read)


def last_audit(ws: Workspace) -> dict[str, Any]:
    return list(AuditLog(ws.state_dir).entries())[-1]


def test_init_and_snapshot_flows_run_as_prefect_task_runs(prefect_server: str, ws: Workspace) -> None:
    init = init_flow(str(ws.root))
    assert {r.tag for r in init.adopted} == {"T01-v1.1.0", "T02-v2.0.1"}
    (ws.root / "tasks/T01/signals.py").write_text("x = 1\n")
    result = snapshot_flow(str(ws.root), "T01", bump="minor", message="via prefect")
    assert result.tag == "T01-v1.2.0"
    entry = last_audit(ws)
    assert entry["details"]["orchestrator"] == "prefect"
    state, tasks = flow_run_of(entry["details"]["flow_run_id"], expect=9)
    assert state == "COMPLETED"
    assert tasks == ["validate", "scan-secrets", "bump-version", "lock-dependencies",
                     "sync-environment", "commit", "checksum", "tag", "export"]

    async def artifact(client: Any) -> Any:
        return await client.read_latest_artifacts()

    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    async def by_key(client: Any) -> Any:
        return await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=["snapshot-t01"])))

    arts = _api(by_key)
    assert arts and "T01-v1.2.0" in str(arts[0].data)


def test_failure_inside_a_flow_run_is_undone(prefect_server: str, ws: Workspace,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    init_flow(str(ws.root))
    head = git(ws, "rev-parse", "HEAD")
    registry = (ws.root / "task_registry.json").read_bytes()
    real = fs.tag_snapshot

    def broken_tag(*args: Any, **kw: Any) -> Any:
        real(*args, **kw)
        raise RuntimeError("injected: tag written, then the process hiccups")

    monkeypatch.setattr(fs, "tag_snapshot", broken_tag)
    with pytest.raises(OperationFailed, match="injected.*everything was put back"):
        snapshot_flow(str(ws.root), "T01", bump="minor")
    assert git(ws, "rev-parse", "HEAD") == head
    assert (ws.root / "task_registry.json").read_bytes() == registry
    assert ws.git.tag_info("T01-v1.2.0") is None
    entry = last_audit(ws)
    assert entry["result"] == "failed" and "tag" in " ".join(entry["details"]["undone"])
    state, _ = flow_run_of(entry["details"]["flow_run_id"])
    assert state == "FAILED"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawback", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600, check=False)


def test_cli_uses_the_configured_server(prefect_server: str, ws: Workspace) -> None:
    init_flow(str(ws.root))
    env = {"PREFECT_API_URL": prefect_server, "CLAWBACK_ORCHESTRATOR": "prefect"}
    proc = _cli("snapshot", "--task", "T02", "--workspace", str(ws.root), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"]["tag"] == "T02-v2.0.2"
    entry = last_audit(ws)
    assert entry["details"]["orchestrator"] == "prefect"
    assert flow_run_of(entry["details"]["flow_run_id"])[0] == "COMPLETED"


def test_cli_runs_without_prefect_when_the_api_is_down(ws: Workspace) -> None:
    from flows.init import run_init

    run_init(str(ws.root))
    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api", "CLAWBACK_ORCHESTRATOR": "prefect"}
    proc = _cli("snapshot", "--task", "T01", "--workspace", str(ws.root), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "unreachable" in proc.stderr and "without the orchestrator" in proc.stderr
    entry = last_audit(ws)
    assert entry["result"] == "ok" and entry["details"]["orchestrator"] == "none"
    assert "unreachable" in entry["details"]["why"]


@pytest.mark.slow
def test_demo_passes(prefect_server: str) -> None:
    proc = _cli("demo", env={"PREFECT_API_URL": prefect_server})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo passed" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # the health story: promote 1.2.0, a buggy 1.4.0, the health check rolls it back and alerts the sink
    assert "T01 1.2.0 marked stable" in proc.stdout
    assert re.search(r"T01\s+1\.4\.0\s+breach", proc.stdout), proc.stdout[-3000:]
    assert "T01 error x" in proc.stdout and "KeyError: 'close' in signals.score" in proc.stdout
    assert "T01: rolled back 1.4.0 -> 1.2.0" in proc.stdout
    assert "alert received by the local sink (json://127.0.0.1:" in proc.stdout
    assert "title: clawback: T01 rolled back 1.4.0 → 1.2.0" in proc.stdout
    assert re.search(r"T01 1\.2\.0: new pid \d+ \(was \d+\); quarantined: 1\.3\.0, 1\.4\.0",
                     proc.stdout)
    assert "UNEXPECTED" not in proc.stdout
    assert "s3cr3t-value" not in proc.stdout + proc.stderr


def test_prefect_yaml_entrypoints_are_flows() -> None:
    import importlib
    from pathlib import Path

    import yaml
    from prefect import Flow

    doc = yaml.safe_load((Path(__file__).parent.parent.parent / "prefect.yaml").read_text())
    for dep in doc["deployments"]:
        path, attr = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, attr), Flow), dep["name"]
        assert "{{ $CLAWBACK_WORKSPACE }}" == dep["parameters"]["workspace"]


def test_rollback_flow_runs_each_step_as_a_task_run(prefect_server: str, story) -> None:
    from flows.prefect_flows import rollback_flow

    ws, old_pid = story
    result = rollback_flow(str(ws.root), "T01", "1.2.0", reason="via prefect")
    assert result.pid and result.pid != old_pid
    entry = last_audit(ws)
    assert entry["action"] == "rollback" and entry["details"]["orchestrator"] == "prefect"
    state, tasks = flow_run_of(entry["details"]["flow_run_id"], expect=10)
    assert state == "COMPLETED"
    assert tasks == ["preflight", "prepare-environment", "stop", "back-up", "restore-files",
                     "restore-registry", "sync-dependencies", "verify", "commit-and-tag", "start"]
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    async def by_key(client: Any) -> Any:
        return await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=["rollback-t01"])))

    arts = _api(by_key)
    assert arts and "1.3.0 -> 1.2.0" in str(arts[0].data)

    async def progress(client: Any) -> Any:
        return await client.read_latest_artifacts(artifact_filter=ArtifactCollectionFilter(
            key=ArtifactCollectionFilterKey(any_=["rollback-progress-t01"])))

    (bar,) = _api(progress)
    assert bar.type == "progress" and float(bar.data) == 100.0
    assert bar.description.endswith("done: 1.2.0 running")


def test_rollback_holds_a_prefect_concurrency_limit_per_task(prefect_server: str, story) -> None:
    """Created before use (a missing limit is silently ignored by Prefect); while someone else holds
    it, a rollback of the same task is refused with exit 3 and changes nothing."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    from flows.prefect_flows import rollback_flow
    from flows.steps import limit_name
    from tasks_lib.core.errors import Conflict, exit_code_for

    ws, old_pid = story
    name = limit_name("rollback", "T01", ws.root)
    registry = (ws.root / "task_registry.json").read_bytes()
    head = git(ws, "rev-parse", "HEAD")
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with concurrency(name, occupy=1, strict=True):     # another worker's rollback of T01
        with pytest.raises(Conflict) as refused:
            rollback_flow(str(ws.root), "T01", "1.2.0")
    assert exit_code_for(refused.value) == 3 and name in str(refused.value)
    assert (ws.root / "task_registry.json").read_bytes() == registry
    assert git(ws, "rev-parse", "HEAD") == head
    assert ws.task("T01").version == "1.3.0"

    result = rollback_flow(str(ws.root), "T01", "1.2.0")   # released: it proceeds
    assert result.to_version == "1.2.0"
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
    assert limit.limit == 1 and limit.active_slots == 0


def test_health_flow_publishes_a_table_artifact(prefect_server: str, story) -> None:
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    from flows.prefect_flows import health_flow

    ws, _ = story
    run = health_flow(str(ws.root))
    assert [r.task_id for r in run.results] == ["T01", "T02"]

    async def by_key(client: Any) -> Any:
        return await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=["health"])))

    arts = _api(by_key)
    assert arts and arts[0].type == "table" and "T01" in str(arts[0].data)

    # a breach on a server without a rollback deployment: the health flow rolls back itself
    from flows.promote import run_promote
    from tests.health.test_health_cli import runs

    run_promote(str(ws.root), "T01", "1.2.0")
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=0, failed=15, version="1.3.0")
    run = health_flow(str(ws.root), auto_rollback=True)
    (action,) = run.actions
    assert (action.action, action.to_version) == ("rolled-back", "1.2.0")
    assert "not a deployment's, so it rolls back on its own machine" in action.detail
    assert "rolled-back: rolled back to 1.2.0" in str(_api(by_key)[0].data)


def test_deployment_parameters_are_typed_described_and_checked_at_run_creation(
        prefect_server: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.prefect_flows import rollback_flow

    dep_id = rollback_flow.to_deployment(name="typed-params-test").apply()
    with get_client(sync_client=True) as client:
        schema = client.read_deployment(dep_id).parameter_openapi_schema
        props = schema["properties"]
        assert props["task_id"]["pattern"] and "T01" in props["task_id"]["description"]
        assert props["grace_s"]["maximum"] == 600 and schema["required"] == [
            "workspace", "task_id", "to_version"]
        for bad in ({"task_id": "../../etc", "to_version": "1.2.0"},
                    {"task_id": "T01", "to_version": "1.2.0; rm -rf /"},
                    {"task_id": "T01", "to_version": "1.2.0", "grace_s": -1}):
            with pytest.raises(PrefectHTTPStatusError) as err:
                client.create_flow_run_from_deployment(dep_id, parameters={"workspace": "/w", **bad})
            assert err.value.response.status_code in (409, 422)
        ok = client.create_flow_run_from_deployment(
            dep_id, parameters={"workspace": "/w", "task_id": "T01", "to_version": "v1.2.0"})
        client.delete_flow_run(ok.id)
        client.delete_deployment(dep_id)
