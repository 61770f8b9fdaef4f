"""A deployment's flow run acts on its worker's workspace only (flows/confine.py):
the rule on strings, then real deployment runs on the session's Prefect
server, executed by the flow engine as a worker's flow-run process executes them, with the
worker's ``CLAWBACK_WORKSPACE``. A refused run leaves both directories byte-identical. The real
worker (clawback serve) and runner (python -m deployments.serve) are in test_serve.py and
test_e2e_health.py."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clawback.demo import sample
from flows.confine import CONFIG_ENV, allowed_workspace
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import Workspace
from tests.conftest import tree

DEP = "0a6c7e1e-0000-4000-8000-000000000000"   # any deployment id: "this is a deployment's run"
WS = "/srv/openclaw/ws"


# -- the rule, on strings --------------------------------------------------------------------------
@pytest.mark.parametrize("requested", [
    WS, WS + "/", WS + "//", "/srv//openclaw/./ws", "/srv/openclaw/ws/.", "///srv/openclaw/ws",
])
def test_spellings_of_the_configured_path_are_accepted_and_the_configured_one_is_used(
        requested: str) -> None:
    assert allowed_workspace(requested, deployment=DEP, configured=WS) == WS


@pytest.mark.parametrize("requested", [
    "", "/", "/etc", "/srv/openclaw", "/srv/openclaw/ws2", "/srv/openclaw/ws/tasks",
    "srv/openclaw/ws", "ws", ".", "..", "~/ws", "//srv/openclaw/ws",
    "/srv/openclaw/ws/..", "/srv/openclaw/ws/tasks/..", "/srv/openclaw/../openclaw/ws",
    "/srv/openclaw/ws\0", "/srv/openclaw/ws\0/etc", "/srv/openclaw/ws\n", " /srv/openclaw/ws",
    "/" + "a" * 100_000, "/proc/self/cwd", "file:///srv/openclaw/ws",
])
def test_anything_else_is_bad_input_naming_the_configured_workspace(requested: str) -> None:
    with pytest.raises(BadInput) as err:
        allowed_workspace(requested, deployment=DEP, configured=WS)
    text = str(err.value)
    assert f"acts only on its worker's workspace {WS}" in text
    assert f"leave the workspace parameter at its default ({WS})" in text
    assert "\0" not in text and "\n  next:" in text and text.count("\n") == 1   # shown escaped
    assert len(text) < 800                                                       # cut


def test_a_run_that_is_not_a_deployments_is_not_confined() -> None:
    for requested in ("/elsewhere", "relative", ""):
        assert allowed_workspace(requested, deployment=None, configured=WS) == requested
        assert allowed_workspace(requested, deployment=None, configured=None) == requested


@pytest.mark.parametrize("configured", [None, ""])
def test_a_deployment_run_without_a_configured_workspace_is_refused(configured: str | None) -> None:
    with pytest.raises(BadInput) as err:
        allowed_workspace(WS, deployment=DEP, configured=configured)
    assert f"{CONFIG_ENV} is not set" in str(err.value) and "clawback serve --workspace" in str(err.value)


@pytest.mark.parametrize("configured", ["relative/ws", "/srv/x/../ws", "/srv/ws\0"])
def test_a_configured_workspace_that_is_not_a_plain_absolute_path_is_refused(configured: str) -> None:
    with pytest.raises(BadInput) as err:
        allowed_workspace(configured, deployment=DEP, configured=configured)
    assert "is not an absolute path without '..'" in str(err.value)


def test_symlinks_only_the_configured_path_is_resolved(tmp_path: Path) -> None:
    """A symlink to the workspace is refused (the requested path is never followed); a configured
    path that is a symlink also accepts its resolved form (how the health flow hands breaches on)."""
    real = tmp_path / "real-ws"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "link2").symlink_to(real)
    with pytest.raises(BadInput):
        allowed_workspace(str(tmp_path / "link"), deployment=DEP, configured=str(real))
    link = str(tmp_path / "link")
    assert allowed_workspace(str(real), deployment=DEP, configured=link) == link
    assert allowed_workspace(link + "/", deployment=DEP, configured=link) == link
    with pytest.raises(BadInput):
        allowed_workspace(str(tmp_path / "link2"), deployment=DEP, configured=link)


@pytest.fixture
def filesystem_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path handed to the usual filesystem calls while the fixture is active."""
    seen: list[str] = []

    def spy(module: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(module, name)

        def wrapped(path: Any, *args: Any, **kw: Any) -> Any:
            seen.append(os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else "")
            return real(path, *args, **kw)

        monkeypatch.setattr(module, name, wrapped)

    for name in ("stat", "lstat", "readlink", "listdir", "scandir", "open", "access", "mkdir"):
        spy(os, name)
    spy(builtins, "open")
    return seen


def test_the_requested_path_is_never_looked_up(tmp_path: Path, filesystem_calls: list[str]) -> None:
    other = tmp_path / "other-ws"
    with pytest.raises(BadInput):
        allowed_workspace(str(other), deployment=DEP, configured=str(tmp_path / "ws"))
    assert not any(str(other) in p for p in filesystem_calls), filesystem_calls


# -- real deployment runs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployments(prefect_server: str) -> Iterator[dict[str, str]]:
    """Deployments of the flows on the session's server, named ``<flow>/confine-test``."""
    from prefect.client.orchestration import get_client

    from flows.prefect_flows import BY_NAME

    ids = {name: str(BY_NAME[name].to_deployment(name="confine-test").apply())
           for name in ("init", "snapshot", "rollback")}
    yield ids
    with get_client(sync_client=True) as client:
        for dep_id in ids.values():
            client.delete_deployment(dep_id)


@pytest.fixture
def worker_of(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """This process as a worker's flow-run process for ``ws`` (what clawback serve gives it)."""
    monkeypatch.setenv(CONFIG_ENV, str(ws.root))
    return ws


def deployment_run(deployments: dict[str, str], flow: str, **parameters: Any) -> Any:
    """Create a flow run of ``<flow>/confine-test`` as the UI's Run button does (the
    deployment's default parameters, then the ones given) and execute it here with the flow
    engine, as ``python -m prefect.engine`` in a worker does. The run's final state."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.prefect_flows import BY_NAME

    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployments[flow], parameters=parameters)
        assert str(run.deployment_id) == deployments[flow]
    run_flow(BY_NAME[flow], flow_run=run, return_type="state")
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.id).state


@pytest.fixture
def other(tmp_path: Path) -> Path:
    """Another real workspace, adopted (it has a .clawback/ to be careful with)."""
    from flows.init import run_init

    root = sample.make_workspace(tmp_path / "other").resolve()
    run_init(str(root))
    return root


def refused(state: Any, configured: Workspace) -> bool:
    return state.is_failed() and "BadInput" in (state.message or "") and \
        f"acts only on its worker's workspace {configured.root}" in (state.message or "")


@pytest.mark.prefect
def test_a_deployment_run_on_another_workspace_is_refused_and_touches_neither(
        deployments, worker_of, other) -> None:
    ws = worker_of
    fresh = sample.make_workspace(other.parent / "fresh").resolve()   # never adopted
    before = {p: tree(p) for p in (ws.root, other, fresh)}
    state = deployment_run(deployments, "rollback", workspace=str(other), task_id="T01",
                           to_version="1.1.0")
    assert refused(state, ws), state.message
    state = deployment_run(deployments, "snapshot", workspace=str(other), task_id="T01",
                           bump="patch")
    assert refused(state, ws), state.message
    state = deployment_run(deployments, "init", workspace=str(fresh))
    assert refused(state, ws), state.message
    assert {p: tree(p) for p in before} == before
    assert not (fresh / ".clawback").exists() and not (ws.root / ".clawback").exists()


@pytest.mark.prefect
def test_a_deployment_run_with_the_default_workspace_works(deployments, worker_of) -> None:
    ws = worker_of
    from prefect.client.orchestration import get_client

    from flows.prefect_flows import init_flow, snapshot_flow

    default = {"workspace": str(ws.root)}           # as prefect.yaml templates it
    mine = {"init": str(init_flow.to_deployment(name="confine-default", parameters=default).apply()),
            "snapshot": str(snapshot_flow.to_deployment(name="confine-default",
                                                        parameters=default).apply())}
    try:
        assert deployment_run(mine, "init").is_completed()
        (ws.root / "tasks/T01/signals.py").write_text("x = 2\n")
        state = deployment_run(mine, "snapshot", task_id="T01", bump="patch")
        assert state.is_completed(), state.message
        assert ws.git.tag_info("T01-v1.1.1") is not None
        # the health flow hands a breach on as the resolved git top level: the same directory
        state = deployment_run(mine, "snapshot", workspace=str(ws.root) + "/", task_id="T01",
                               bump="patch")
        assert state.is_completed() and ws.git.tag_info("T01-v1.1.2") is not None
    finally:
        with get_client(sync_client=True) as client:
            for dep_id in mine.values():
                client.delete_deployment(dep_id)


ATTACKS = ["/", "/etc", "tasks", "..", "", "/" + "x" * 5000, "{root}/..", "{root}/tasks/..",
           "{link}", "{root}\n", "/proc/self/cwd", "~"]


@pytest.mark.prefect
@pytest.mark.parametrize("spelling", ATTACKS)
def test_hostile_workspace_parameters_are_refused(deployments, worker_of, spelling: str,
                                                  tmp_path: Path) -> None:
    ws = worker_of
    (tmp_path / "link").symlink_to(ws.root)
    before = tree(ws.root)
    requested = spelling.format(root=ws.root, link=tmp_path / "link")
    state = deployment_run(deployments, "init", workspace=requested)
    assert refused(state, ws), state.message
    assert tree(ws.root) == before


@pytest.mark.prefect
def test_a_nul_byte_never_reaches_a_worker(deployments, worker_of) -> None:
    """The server refuses the run, or the flow refuses it: never a path with NUL."""
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        state = deployment_run(deployments, "init", workspace=f"{worker_of.root}\0")
    except PrefectHTTPStatusError as exc:
        assert exc.response.status_code in (409, 422)
        return
    assert refused(state, worker_of), state.message


@pytest.mark.prefect
def test_a_deployment_run_on_a_worker_without_a_workspace_is_refused(
        deployments, ws, monkeypatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    before = tree(ws.root)
    state = deployment_run(deployments, "init", workspace=str(ws.root))
    assert state.is_failed() and f"{CONFIG_ENV} is not set" in state.message
    assert tree(ws.root) == before


@pytest.mark.prefect
def test_a_nested_flow_run_of_a_deployment_run_is_confined_too(
        prefect_server, worker_of, other) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.prefect_flows import init_flow

    @flow(name="confine-nested-test")
    def outer(workspace: str) -> None:
        init_flow(workspace)

    before = tree(other)
    with get_client(sync_client=True) as client:
        dep = client.create_deployment(client.create_flow(outer), name="nested-test",
                                       entrypoint="tests/flows/test_confine.py:outer")
        run = client.create_flow_run_from_deployment(dep, parameters={"workspace": str(other)})
    try:
        state = run_flow(outer, flow_run=run, return_type="state")
        assert state.is_failed() and "acts only on its worker's workspace" in str(state.message)
        assert tree(other) == before
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(dep)


@pytest.mark.prefect
def test_the_cli_names_any_workspace(prefect_server, worker_of, other) -> None:
    """A flow run that is not a deployment's (how the CLI runs its flows) is not confined, even
    in a process that has a configured workspace."""
    from flows.prefect_flows import snapshot_flow

    (other / "tasks/T01/signals.py").write_text("x = 3\n")
    assert snapshot_flow(str(other), "T01", bump="patch").tag == "T01-v1.1.1"
