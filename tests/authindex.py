"""A package index on loopback that wants HTTP basic auth (PEP 503 simple pages over a local
wheelhouse, plus a flat find-links page), and a uv wrapper that records every argv it is run with.
Both are seams the tests own: the real uv runs behind the wrapper, against a real server."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tasks_lib.deps.lockfile import normalize


@dataclass
class Index:
    url: str                      # http://127.0.0.1:PORT (no credentials)
    user: str
    password: str
    authorized: list[str] = field(default_factory=list)   # paths served with valid credentials
    refused: list[str] = field(default_factory=list)      # paths asked without them

    def with_auth(self, path: str = "/simple") -> str:
        host = self.url.split("://", 1)[1]
        return f"http://{self.user}:{self.password}@{host}{path}"


@contextmanager
def auth_index(wheelhouse: Path, user: str, password: str) -> Iterator[Index]:
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    digests = {w: hashlib.sha256((wheelhouse / w).read_bytes()).hexdigest() for w in wheels}
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    index = Index("", user, password)

    def links(names: list[str]) -> bytes:
        body = "".join(f'<a href="/files/{w}#sha256={digests[w]}">{w}</a><br>\n' for w in names)
        return f"<!DOCTYPE html><html><body>\n{body}</body></html>\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if self.headers.get("Authorization") != expected:
                index.refused.append(path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="packages"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            index.authorized.append(path)
            parts = [p for p in path.split("/") if p]
            body: bytes | None = None
            ctype = "text/html"
            if parts[:1] == ["simple"] and len(parts) == 2:
                body = links([w for w in wheels if normalize(w.split("-")[0]) == normalize(parts[1])])
            elif parts == ["files"]:
                body = links(wheels)
            elif parts[:1] == ["files"] and len(parts) == 2 and parts[1] in digests:
                body, ctype = (wheelhouse / parts[1]).read_bytes(), "application/octet-stream"
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def argv_recorder(tmp: Path, real_uv: str) -> tuple[Path, Path]:
    """A ``uv`` that appends its argv (one JSON list per line) to a log, then execs the real uv."""
    log = tmp / "uv-argv.jsonl"
    wrapper = tmp / "uv"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a', encoding='utf-8') as fh:\n"
        "    fh.write(json.dumps(sys.argv) + '\\n')\n"
        f"os.execv({real_uv!r}, [{real_uv!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


def recorded(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def clean_env(extra: dict[str, str], cache: Path) -> dict[str, str]:
    """os.environ without any pip/uv source settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"UV_CACHE_DIR": str(cache), "PIP_CONFIG_FILE": os.devnull, **extra})
    return env
