"""Shared fixtures: real temporary git workspaces, a local wheelhouse, an offline uv setup, and
one session-scoped Prefect test harness for every flow test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks_lib import sample
from tasks_lib.workspace import Workspace

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.make_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path, uv_cache: Path) -> dict[str, str]:
    """uv installs only from the local wheelhouse: no network in tests."""
    env = sample.offline_env(wheelhouse, dict(os.environ))
    env["UV_CACHE_DIR"] = str(uv_cache)
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLAWBACK_ACTOR", "tester@ci")
    return env


@pytest.fixture
def ws(tmp_path: Path, offline: dict[str, str]) -> Workspace:
    """The sample workspace: T01 1.1.0, T02 2.0.1 committed, T99 deleted, T01 state untracked."""
    return Workspace(sample.make_workspace(tmp_path / "ws").resolve())


def git(ws: Workspace, *args: str) -> str:
    return sample.git(ws.root, *args)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test harness (a real local server) for the whole session; yields its API URL."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield str(PREFECT_API_URL.value())
