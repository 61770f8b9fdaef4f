"""Prefect flow-run states as the health source (tasks_lib/health/prefect_source.py): real flow
runs with real states on the session's Prefect test server, read over its REST API."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tasks_lib.core import settings as task_settings
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import Task
from tasks_lib.health import prefect_source as health_prefect
from tasks_lib.health import verdict as health

_names = itertools.count()


@pytest.fixture
def api(prefect_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The reader reads the environment (the harness only sets Prefect's own settings)."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    return prefect_server


@pytest.fixture(scope="module")
def client(prefect_server: str) -> Iterator[Any]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        yield c


class Runs:
    """Flow runs of one flow with a name unique to the test (the server is shared)."""

    def __init__(self, client: Any, name: str) -> None:
        from prefect import Flow

        def noop() -> None:
            pass

        self.client, self.name = client, f"{name}-{next(_names)}"
        self.flow = Flow(fn=noop, name=self.name)

    def add(self, state: str, n: int = 1, message: str | None = None,
            tags: list[str] | None = None, parameters: dict[str, Any] | None = None) -> None:
        from prefect import states

        make = {"ok": states.Completed, "failed": states.Failed, "crashed": states.Crashed,
                "cancelled": states.Cancelled, "running": states.Running}[state]
        for _ in range(n):
            self.client.create_flow_run(self.flow, state=make(message=message), tags=tags or [],
                                        parameters=parameters or {})


@pytest.fixture
def runs(client: Any, request: pytest.FixtureRequest) -> Runs:
    return Runs(client, request.node.name.replace("[", "-").replace("]", ""))


def hs(flow: str, tags: list[str] | None = None, min_samples: int = 10,
       threshold: float = 0.1) -> task_settings.HealthSettings:
    raw: dict[str, Any] = {"source": "prefect", "flow": flow, "min_samples": min_samples,
                           "threshold": threshold}
    if tags is not None:
        raw["tags"] = tags
    return task_settings.parse("T01", {"health": raw}).health


SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def judge(flow: str, *, version: str | None = "1.3.0", since: datetime = SINCE,
          **kw: Any) -> health.HealthResult:
    page_size = kw.pop("page_size", health_prefect.PAGE_SIZE)
    return health.evaluate_prefect(task_id="T01", version=version, health=hs(flow, **kw),
                                   since=since, page_size=page_size)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- verdicts ----------------------------------------------------------------------------------
def test_failed_and_crashed_runs_breach_cancelled_do_not_count(api: str, runs: Runs) -> None:
    runs.add("ok", 8)
    runs.add("failed", message="db down: password=hunter2")
    runs.add("crashed", message="killed by OOM")
    runs.add("cancelled", 3)
    runs.add("running")  # no outcome yet
    r = judge(runs.name)
    assert (r.verdict, r.samples, r.failures, r.rate) == ("breach", 10, 2, 0.2)
    assert {(e.message, e.count) for e in r.top_errors} == {
        ("db down: password=****", 1), ("killed by OOM", 1)}
    assert "above the threshold 0.1" in r.detail and r.unhealthy
    assert r.source == f"prefect flow {runs.name}"
    assert r.as_dict()["verdict"] == "breach"


def test_healthy(api: str, runs: Runs) -> None:
    runs.add("ok", 10)
    r = judge(runs.name)
    assert (r.verdict, r.samples, r.failures) == ("healthy", 10, 0) and not r.unhealthy


def test_too_few_runs_are_inconclusive(api: str, runs: Runs) -> None:
    runs.add("failed", 3, message="boom")
    r = judge(runs.name)
    assert (r.verdict, r.samples, r.failures) == ("inconclusive", 3, 3)
    assert "fewer than 10 runs" in r.detail and not r.unhealthy


def test_exactly_the_threshold_is_not_a_breach(api: str, runs: Runs) -> None:
    runs.add("ok", 9)
    runs.add("failed", message="boom")
    assert judge(runs.name).verdict == "healthy"
    runs.add("failed", message="boom")  # 2/11 > 0.1
    r = judge(runs.name)
    assert (r.verdict, r.failures, r.top_errors[0].message, r.top_errors[0].count) == (
        "breach", 2, "boom", 2)


def test_tags_select_the_runs_carrying_all_of_them(api: str, runs: Runs) -> None:
    runs.add("failed", 3, message="other task", tags=["t02", "prod"])
    runs.add("failed", 2, message="staging", tags=["t01"])
    runs.add("ok", 4, tags=["t01", "prod", "extra"])
    runs.add("failed", 1, message="mine", tags=["prod", "t01"])
    r = judge(runs.name, tags=["t01", "prod"], min_samples=5)
    assert (r.samples, r.failures, r.top_errors[0].message) == (5, 1, "mine")
    assert r.source == f"prefect flow {runs.name} (tags t01, prod)"
    assert judge(runs.name, min_samples=5).samples == 10  # no tags: every run of the flow


def test_runs_of_other_versions_are_skipped(api: str, runs: Runs) -> None:
    runs.add("failed", 4, message="old code", parameters={"version": "1.2.0"})
    runs.add("failed", 2, message="old code", tags=["version:1.2.0"])
    runs.add("ok", 3, parameters={"version": "1.3.0", "n": 1})
    runs.add("ok", 2, tags=["t01", "version:1.3.0"])
    runs.add("failed", 1, message="unversioned")  # names no version: counts
    r = judge(runs.name, min_samples=5, threshold=0.2)
    assert (r.verdict, r.samples, r.failures) == ("healthy", 6, 1)
    assert "6 run(s) of other versions not counted" in r.detail
    everything = judge(runs.name, version=None, min_samples=5)  # no current version: all count
    assert (everything.samples, everything.failures) == (12, 7)


def test_runs_before_since_are_not_counted(api: str, runs: Runs) -> None:
    runs.add("failed", 6, message="before the new version")
    since = datetime.now(UTC)
    runs.add("ok", 3)
    runs.add("failed", message="after")
    r = judge(runs.name, since=since, min_samples=4)
    assert (r.samples, r.failures, r.top_errors[0].message) == (4, 1, "after")
    assert r.window_start == since and r.verdict == "breach"
    window = health_prefect.read_window(runs.name, since, version="1.3.0")
    assert window.lines_read == 4  # only the window was sent


def test_pagination_reads_every_page_and_no_more(api: str, runs: Runs,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runs.add("ok", 5)
    runs.add("failed", 2, message="boom")
    sent: list[dict[str, Any]] = []
    real_stream = httpx.Client.stream

    def spy(self: httpx.Client, method: str, url: str, **kw: Any) -> Any:
        sent.append(kw["json"])
        return real_stream(self, method, url, **kw)

    monkeypatch.setattr(httpx.Client, "stream", spy)
    for page_size, pages in ((2, 4), (7, 2), (1, 8), (200, 1)):
        sent.clear()
        w = health_prefect.read_window(runs.name, SINCE, page_size=page_size)
        assert (w.samples, w.failures, w.lines_read, w.errors) == (7, 2, 7, (("boom", 2),))
        assert [b["offset"] for b in sent] == [i * page_size for i in range(pages)]
        assert all(b["limit"] == page_size for b in sent) and w.bytes_read > 0
    r = judge(runs.name, page_size=3, min_samples=5)
    assert (r.verdict, r.samples, r.failures) == ("breach", 7, 2)


def test_the_filter_body(api: str) -> None:
    body = health_prefect.flow_run_filter("f", datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
                                          ["a", "b"])
    assert body == {
        "sort": "START_TIME_DESC",
        "flows": {"name": {"any_": ["f"]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}},
                      "start_time": {"after_": "2026-01-02T03:04:05.000678+00:00"},
                      "tags": {"all_": ["a", "b"]}},
    }
    # the server accepts it (a typo in a field name would be a 422)
    resp = httpx.post(f"{api}/flow_runs/filter", json={**body, "limit": 1, "offset": 0})
    assert resp.status_code == 200 and resp.json() == []


def test_a_flow_the_server_never_saw_is_no_source_yet(api: str) -> None:
    r = judge(f"never-ran-{next(_names)}")
    assert r.verdict == "inconclusive" and r.samples == 0
    assert "no health source yet (no flow named never-ran-" in r.detail


def test_a_flow_without_runs_in_the_window_is_inconclusive(api: str, runs: Runs) -> None:
    runs.add("ok", 2)
    r = judge(runs.name, since=datetime.now(UTC) + timedelta(seconds=1))
    assert (r.verdict, r.samples) == ("inconclusive", 0) and "0/0 failed" in r.detail


# -- errors in measuring are never failures ----------------------------------------------------
def test_no_api_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    r = judge("any")
    assert r.verdict == "error" and r.samples == 0 and r.rate is None
    assert "PREFECT_API_URL is not set" in r.detail and "set it to" in r.detail


def test_api_down_is_an_error_saying_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://admin:s3cretpw@127.0.0.1:{unused_port()}/api")
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_secretkey123")
    r = judge("any")
    assert r.verdict == "error" and r.verdict != "breach"
    assert "cannot be reached" in r.detail and "PREFECT_API_URL" in r.detail
    shown = json.dumps(r.as_dict())
    assert "pnu_secretkey123" not in shown and "s3cretpw" not in shown and "Traceback" not in shown


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        with pytest.raises(health_prefect.SourceError, match=r"did not answer within 0.3 s"):
            health_prefect.read_window("f", SINCE, environ={"PREFECT_API_URL": url}, timeout=0.3)


def test_a_url_without_api_is_an_error_naming_the_fix(api: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", api.removesuffix("/api"))
    r = judge("any")
    assert r.verdict == "error" and "HTTP 404" in r.detail and "ending in /api" in r.detail


@pytest.mark.parametrize(("status", "body", "expect"), [
    (401, b'{"detail": "bad key"}', "set PREFECT_API_KEY"),
    (500, b"Internal error token=abc123def", "answered HTTP 500"),
    (200, b'{"not": "a list"}', "not a list"),
    (200, b"<html>proxy login</html>", "not a list"),
])
def test_bad_answers_are_errors(status: int, body: bytes, expect: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body)

    env = {"PREFECT_API_URL": "https://prefect.example/api/", "PREFECT_API_KEY": "k3y"}
    with pytest.raises(health_prefect.SourceError) as err:
        health_prefect.read_window("f", SINCE, environ=env, transport=httpx.MockTransport(handler))
    text = str(err.value)
    assert expect in text and "k3y" not in text and "abc123def" not in text
    assert seen[0].headers["authorization"] == "Bearer k3y"
    assert str(seen[0].url) == "https://prefect.example/api/flow_runs/filter"


def test_auth_string_is_basic_auth_like_prefects_client() -> None:
    got: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request.headers["authorization"])
        return httpx.Response(200, json=[{"id": "1", "start_time": "2026-01-01T00:00:00Z",
                                          "state": {"type": "COMPLETED"}}, "junk"])

    env = {"PREFECT_API_URL": "http://x/api", "PREFECT_API_AUTH_STRING": "admin:pass",
           "PREFECT_API_KEY": "ignored"}
    w = health_prefect.read_window("f", SINCE, environ=env, transport=httpx.MockTransport(handler))
    assert got == ["Basic YWRtaW46cGFzcw=="] and (w.samples, w.unreadable) == (1, 1)


# -- settings and dispatch ---------------------------------------------------------------------
def test_check_task_dispatches_on_source_prefect(api: str, runs: Runs) -> None:
    runs.add("failed", 2, message="boom", parameters={"version": "1.4.0"})
    started = datetime.now(UTC)
    runs.add("ok", 3, parameters={"version": "1.4.0"})
    runs.add("failed", 1, message="new boom", parameters={"version": "1.4.0"})
    entry = {"id": "T01", "version": "1.4.0",
             "snapshots": [{"version": "1.4.0", "created_at": started.isoformat()}]}
    task = Task(id="T01", version="1.4.0", status="active", location="tasks/T01",
                config_file="config.yaml", entry_point="main.py", entry=entry,
                settings=task_settings.parse("T01", {"health": {
                    "source": "prefect", "flow": runs.name, "min_samples": 4}}))
    r = health.check_task("/nonexistent-workspace", task)
    assert (r.verdict, r.samples, r.failures, r.version) == ("breach", 4, 1, "1.4.0")
    assert r.window_start == started


def test_settings_parse_the_prefect_source() -> None:
    s = task_settings.parse("T01", {"health": {"source": "prefect", "flow": " t01-daily ",
                                               "tags": ["t01", "prod", "t01"]}})
    assert (s.health.source, s.health.flow, s.health.tags) == ("prefect", "t01-daily",
                                                                ("t01", "prod"))
    assert json.loads(json.dumps(s.as_dict()))["health"] == {
        "source": "prefect", "window_minutes": 60, "min_samples": 10, "threshold": 0.1,
        "flow": "t01-daily", "tags": ["t01", "prod"]}
    default = task_settings.parse("T01", None).health
    assert default.flow is None and default.tags is None
    assert "flow" not in task_settings.parse("T01", None).as_dict()["health"]


@pytest.mark.parametrize(("health_raw", "key", "hint"), [
    ({"source": "prefect"}, "health.flow", '"flow": "t01-daily"'),
    ({"source": "prefect", "flow": ""}, "health.flow", '"source": "prefect"'),
    ({"source": "prefect", "flow": ["a"]}, "health.flow", '"flow"'),
    ({"flow": "t01-daily"}, "health.flow", '"source": "prefect"'),
    ({"source": "logs/runs.jsonl", "tags": ["a"]}, "health.tags", '"source": "prefect"'),
    ({"source": "prefect", "flow": "f", "tags": "t01"}, "health.tags", '"tags": ['),
    ({"source": "prefect", "flow": "f", "tags": ["ok", ""]}, "health.tags", '"tags": ['),
    ({"source": "prefect", "flow": "f", "error_pattern": "ERROR"}, "health.error_pattern",
     "remove the patterns"),
])
def test_bad_prefect_settings_name_the_key_and_the_fix(health_raw: dict, key: str,
                                                       hint: str) -> None:
    with pytest.raises(BadInput) as err:
        task_settings.parse("T01", {"health": health_raw})
    assert f"task T01: clawback.{key}" in err.value.message
    assert hint in err.value.message + " " + str(err.value.hint)


def test_an_endless_answer_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import threading

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(b"[" + b'{"x": 1},' * 10)
                while True:
                    self.wfile.write(b" " * 65536)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(health_prefect, "MAX_ANSWER_BYTES", 1 << 20)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api"
        with pytest.raises(health_prefect.SourceError, match=r"more than 1 MiB"):
            health_prefect.read_window("f", SINCE, environ={"PREFECT_API_URL": url}, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
