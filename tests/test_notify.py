"""Alerts through real apprise to real loopback servers: a JSON webhook (http.server) and an SMTP
server (socketserver). Only the retry delay is injected; nothing else is replaced."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks_lib.notify import (
    Alert,
    SendReport,
    escalation_options,
    log_result,
    notify_urls,
    render,
    send,
    workspace_urls,
)
from tasks_lib.state.audit import AuditLog

PASSWORD = "Pw4alertsXq9"
TOKEN = "hooktok3nZZ8812"
ENV_SECRET = "envSecretV4lue77"


def _alert(kind: str = "auto-rollback", **kw: object) -> Alert:
    fields: dict[str, object] = dict(
        kind=kind, task_id="T01", from_version="1.3.0", to_version="1.2.0", error_rate=0.35,
        samples=20, failures=7, threshold=0.1,
        top_errors=(("KeyError: 'close'", 2), ("upstream said token=abcd1234secret", 4),
                    (f"auth failed with {ENV_SECRET}", 1), ("rare", 0)),
        action="rolled back to 1.2.0; 1.3.0 quarantined",
        run_url="http://127.0.0.1:4200/runs/flow-run/7f0c", workspace="prod")
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret-named variable whose value shows up verbatim in an error message."""
    monkeypatch.setenv("MY_API_KEY", ENV_SECRET)


# -- loopback servers -----------------------------------------------------------------------
class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        srv = self.server
        srv.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))  # type: ignore[attr-defined]
        code = srv.codes.pop(0) if srv.codes else srv.default  # type: ignore[attr-defined]
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:  # http.server would print to stderr
        pass


class _SMTP(socketserver.StreamRequestHandler):
    """Enough SMTP for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 loopback ESMTP\r\n")
        lines: list[bytes] | None = None
        while line := self.rfile.readline():
            if lines is not None:  # inside DATA
                if line in (b".\r\n", b".\n"):
                    self.server.messages.append(b"".join(lines))  # type: ignore[attr-defined]
                    lines = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-loopback\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
            elif verb == b"AUTH":
                self.wfile.write(b"235 accepted\r\n")
            elif verb == b"DATA":
                lines = []
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def serve() -> Iterator[Callable[..., socketserver.BaseServer]]:
    servers: list[tuple[socketserver.BaseServer, threading.Thread]] = []

    def start(server: socketserver.BaseServer, **attrs: object) -> socketserver.BaseServer:
        for key, value in attrs.items():
            setattr(server, key, value)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def webhook(serve: Callable[..., socketserver.BaseServer], codes: list[int] | None = None,
            default: int = 200) -> socketserver.BaseServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    srv.daemon_threads = True
    return serve(srv, received=[], codes=list(codes or []), default=default)


def json_url(srv: socketserver.BaseServer) -> str:
    return f"json://alerts:{PASSWORD}@127.0.0.1:{srv.server_address[1]}/hook/{TOKEN}"


def _nowhere(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, TOKEN, ENV_SECRET, "abcd1234secret"):
            assert secret not in text


# -- sending --------------------------------------------------------------------------------
def test_json_webhook_receives_the_alert_masked(serve) -> None:
    srv = webhook(serve)
    alert = _alert("escalation", to_version=None, action="held: an automatic rollback ran at 09:00",
                   options=escalation_options("T01", "1.2.0", "1.3.0"))
    report = send(alert, [json_url(srv)], sleep=pytest.fail)
    assert report.ok and report.result == "sent"
    assert report.as_dict()["destinations"] == [
        {"destination": "json:// #1", "ok": True, "attempts": 1, "error": None}]
    (payload,) = srv.received  # type: ignore[attr-defined]
    title, body = payload["title"], payload["message"]
    assert title == "clawback: T01 needs a decision at 1.3.0 (error rate 35.0%, 7/20 runs)"
    for part in ("Task: T01 (workspace prod)", "Version: 1.3.0",
                 "Error rate: 35.0% (7 of 20 runs failed; threshold 10.0%)",
                 "- 4× upstream said token=****", "- 2× KeyError: 'close'",
                 "- 1× auth failed with ***", "Done: held: an automatic rollback ran at 09:00",
                 "1. roll back to the last stable version: clawback rollback --task T01 --to 1.2.0",
                 "2. roll back to a chosen version: clawback rollback --task T01 --to VERSION "
                 "(clawback history --task T01 lists them)",
                 "3. hold: leave T01 at 1.3.0 and investigate",
                 "Run: http://127.0.0.1:4200/runs/flow-run/7f0c"):
        assert part in body
    assert "rare" not in body  # only the three most frequent
    assert payload["type"] == "failure"
    _nowhere(json.dumps(payload))


def test_smtp_server_receives_the_email(serve) -> None:
    srv = serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTP), messages=[])
    port = srv.server_address[1]
    url = (f"mailto://alerts:{PASSWORD}@127.0.0.1:{port}"
           "?from=clawback@example.com&to=ops@example.com&mode=insecure")
    report = send(_alert(), [url], sleep=pytest.fail, timeout_s=5)
    assert report.ok, report.as_dict()
    assert report.deliveries[0].destination == "mailto:// #1"
    (raw,) = srv.messages  # type: ignore[attr-defined]
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["subject"] == "clawback: T01 rolled back 1.3.0 → 1.2.0 (error rate 35.0%, 7/20 runs)"
    assert mail["to"] == "ops@example.com"
    text = mail.get_body(preferencelist=("plain", "html")).get_content()  # type: ignore[union-attr]
    assert "Versions: 1.3.0 → 1.2.0" in text and "Done: rolled back to 1.2.0" in text
    _nowhere(raw.decode("utf-8", "replace"), text)


def test_retries_until_the_server_accepts(serve) -> None:
    srv = webhook(serve, codes=[500, 500], default=200)
    slept: list[float] = []
    report = send(_alert(), [json_url(srv)], delay_s=0.25, sleep=slept.append)
    assert report.ok and report.deliveries[0].attempts == 3
    assert slept == [0.25, 0.25] and len(srv.received) == 3  # type: ignore[attr-defined]


def test_a_destination_that_keeps_failing_is_reported_never_raised(
        serve, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)  # apprise and urllib3 log the URL and its path at DEBUG
    srv = webhook(serve, default=500)
    slept: list[float] = []
    report = send(_alert(), [json_url(srv)], sleep=slept.append)
    (d,) = report.deliveries
    assert (report.ok, report.result, d.ok, d.attempts) == (False, "failed", False, 3)
    assert "500" in (d.error or "") and len(slept) == 2
    audit = AuditLog(tmp_path)
    entry = log_result(audit, _alert(), report)
    assert (entry["action"], entry["result"], entry["task"]) == ("alert", "failed", "T01")
    assert entry["details"]["destinations"] == ["json:// #1"]
    assert entry["details"]["kind"] == "auto-rollback" and entry["details"]["errors"]
    assert audit.verify().ok
    assert "Failed to send JSON POST notification" in caplog.text  # the logs are kept, scrubbed
    out = capsys.readouterr()
    _nowhere(repr(report), json.dumps(report.as_dict()), audit.path.read_text(), caplog.text,
             *(r.getMessage() for r in caplog.records), out.out, out.err)


def test_a_silent_server_is_bounded_by_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:  # accepts connections, never answers
        start = time.monotonic()
        report = send(_alert(), [f"json://127.0.0.1:{sock.getsockname()[1]}/x"],
                      attempts=1, timeout_s=0.5)
        assert time.monotonic() - start < 3
    assert not report.ok and report.deliveries[0].attempts == 1


def test_invalid_urls_fail_with_a_reason_and_good_ones_still_go(serve) -> None:
    srv = webhook(serve)
    report = send(_alert(), ["bogus://abc", "feishu://", json_url(srv), TOKEN], sleep=pytest.fail)
    bad, feishu, good, bare = report.deliveries
    assert [d.destination for d in report.deliveries] == [
        "bogus:// #1", "feishu:// #2", "json:// #3", "(no scheme) #4"]
    for d in (bad, feishu, bare):
        assert not d.ok and d.attempts == 0 and "refused the URL" in (d.error or "")
    assert good.ok and report.result == "partly-sent"
    _nowhere(repr(report))


def test_no_url_means_nothing_to_send(tmp_path: Path) -> None:
    report = send(_alert(), [])
    assert report == SendReport((), report.duration_s)
    assert report.ok and report.result == "not-configured"
    entry = log_result(AuditLog(tmp_path), _alert(), report)
    assert entry["result"] == "not-configured" and entry["details"]["destinations"] == []


# -- configuration and rendering ------------------------------------------------------------
def test_notify_urls_split_on_commas_whitespace_and_newlines() -> None:
    raw = ("json://h/a, mailto://u:p@h?to=a@x.com,b@x.com\n\tfeishu://tok,,lark://t2 "
           " json://h/a,\n")
    assert notify_urls({"CLAWBACK_NOTIFY_URLS": raw}, extra=("gotify://g/t", "lark://t2")) == (
        "json://h/a", "mailto://u:p@h?to=a@x.com,b@x.com", "feishu://tok", "lark://t2",
        "gotify://g/t")
    assert notify_urls({}) == () and notify_urls({"CLAWBACK_NOTIFY_URLS": " , \n"}) == ()


def test_workspace_urls_come_from_the_git_ignored_state_dir(tmp_path: Path) -> None:
    assert workspace_urls(tmp_path) == ()
    (tmp_path / "notify-urls").write_text("# ops channel\nfeishu://tok#x\n\n  json://h/a, lark://t\n")
    assert workspace_urls(tmp_path) == ("feishu://tok#x", "json://h/a", "lark://t")


@pytest.mark.parametrize(("kind", "title"), [
    ("auto-rollback", "clawback: T01 rolled back 1.3.0 → 1.2.0 (error rate 35.0%, 7/20 runs)"),
    ("auto-rollback-failed",
     "clawback: T01 automatic rollback 1.3.0 → 1.2.0 FAILED (error rate 35.0%, 7/20 runs)"),
    ("escalation", "clawback: T01 needs a decision at 1.3.0 (error rate 35.0%, 7/20 runs)"),
    ("source-errors", "clawback: T01 health source unreadable at 1.3.0"),
    ("promoted", "clawback: T01 1.2.0 promoted to stable"),
])
def test_render_each_kind(kind: str, title: str) -> None:
    got_title, body = render(_alert(kind), environ={"TUSHARE_TOKEN": ENV_SECRET})
    assert got_title == title
    assert body.splitlines()[:3] == ["Task: T01 (workspace prod)", "Versions: 1.3.0 → 1.2.0",
                                     "Error rate: 35.0% (7 of 20 runs failed; threshold 10.0%)"]
    assert "Run: http://127.0.0.1:4200/runs/flow-run/7f0c" in body
    _nowhere(got_title, body)


def test_escalation_offers_the_three_options() -> None:
    options = escalation_options("T01", "1.2.0", "1.3.0")
    _, body = render(_alert("escalation", options=options), environ={})
    assert body.split("Options:\n", 1)[1].splitlines()[:3] == [
        "1. roll back to the last stable version: clawback rollback --task T01 --to 1.2.0",
        "2. roll back to a chosen version: clawback rollback --task T01 --to VERSION "
                 "(clawback history --task T01 lists them)",
        "3. hold: leave T01 at 1.3.0 and investigate"]
    assert escalation_options("T01", None, "1.3.0")[0].startswith("no stable version to roll back to")


def test_render_without_a_rate_or_errors_stays_short() -> None:
    title, body = render(Alert("promoted", "T02", to_version="2.0.1", action="promoted by ops"),
                         environ={})
    assert title == "clawback: T02 2.0.1 promoted to stable"
    assert body == "Task: T02\nVersion: 2.0.1\nDone: promoted by ops"
