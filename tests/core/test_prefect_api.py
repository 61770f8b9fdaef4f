"""tasks_lib/core/prefect_api.py: one precedence for Prefect credentials (Prefect's own:
PREFECT_API_AUTH_STRING, else PREFECT_API_KEY), used by the health source and by
``clawback serve``'s REST calls alike; answers read under a cap and a deadline."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from deployments import api as serve_api
from tasks_lib.core import prefect_api

BASIC = "Basic YWRtaW46cGFzcw=="  # admin:pass


@pytest.mark.parametrize(("env", "expected"), [
    ({"PREFECT_API_AUTH_STRING": "admin:pass", "PREFECT_API_KEY": "k3y"}, BASIC),
    ({"PREFECT_API_AUTH_STRING": "admin:pass"}, BASIC),
    ({"PREFECT_API_KEY": "k3y"}, "Bearer k3y"),
    ({"PREFECT_API_AUTH_STRING": "", "PREFECT_API_KEY": "k3y"}, "Bearer k3y"),
    ({}, None),
])
def test_auth_string_wins_over_the_api_key_as_in_prefects_client(env, expected):
    assert prefect_api.auth_headers(env).get("Authorization") == expected


@pytest.fixture
def server() -> Iterator[tuple[str, list[str | None]]]:
    """A real loopback server answering like a Prefect API, recording each Authorization."""
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body: bytes) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            self._answer(b"true" if self.path.endswith("/health") else b'{"name": "p"}')

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/api", seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_clawback_serve_sends_the_same_credentials(server, monkeypatch: pytest.MonkeyPatch):
    url, seen = server
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:pass")
    monkeypatch.setenv("PREFECT_API_KEY", "k3y")
    assert serve_api.probe(url) == "prefect"
    api = serve_api.Api(url)
    try:
        assert api.work_pool("p") == {"name": "p"}
    finally:
        api.close()
    assert seen == [BASIC, BASIC]


def test_an_answer_past_the_cap_is_not_read_further():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * (3 << 20))

    with httpx.Client(transport=httpx.MockTransport(handler)) as http_client:
        with pytest.raises(prefect_api.AnswerTooLarge, match="more than 1 MiB"):
            prefect_api.read_capped(http_client, "POST", "http://x/api/f", json={},
                                    deadline=time.monotonic() + 30, limit=1 << 20)
        resp, body = prefect_api.read_capped(http_client, "POST", "http://x/api/f", json={},
                                             deadline=time.monotonic() + 30)
        assert resp.status_code == 200 and len(body) == 3 << 20
