"""``clawback serve``: everything one machine needs, from one command (docs/scale-out.md).

    clawback serve --workspace ~/ws [--port 4200] [--health-interval 300] [--machine NAME]

What it does, in order:

1. **Server.** Reuses the Prefect server in ``$PREFECT_API_URL`` when that answers ``/health``
   (a remote one that does not answer is an error: starting a local one instead would split the
   machines), else one already answering on 127.0.0.1:PORT; otherwise starts
   ``prefect server start --host 127.0.0.1 --port PORT`` with ``PREFECT_HOME`` in the workspace's
   git-ignored ``.clawback/prefect``, so its SQLite database outlives restarts. Something else on
   the port is bad input (exit 2).
2. **Pool and queue.** Creates the process work pool ``clawback`` and this machine's work queue
   when missing, and resumes the queue when the last stop paused it.
3. **Deployments.** ``prefect --no-prompt deploy --all`` of prefect.yaml from the repository root
   with ``CLAWBACK_HOME``, ``CLAWBACK_WORKSPACE`` and ``CLAWBACK_MACHINE``: every flow deployed as
   ``<flow>/<machine>`` on the queue ``<machine>`` (routing: docs/scale-out.md); then
   ``--health-interval`` on the health deployment's schedule when given.
4. **Worker.** ``prefect worker start --pool clawback --work-queue <machine>``, polling every
   ``PREFECT_WORKER_QUERY_SECONDS`` (2 s here by default: it bounds how late a rollback starts),
   with ``CLAWBACK_WORKSPACE`` in its environment, which its flow runs inherit: a run whose
   ``workspace`` parameter names another directory is refused (flows/confine.py).

**Stopping** (Ctrl-C or SIGTERM; exit 0). A Prefect worker keeps taking runs for a while after
it is told to stop, so the queue is paused first (nothing new is handed out; a marker file makes
the next start resume it), then flow runs in flight get ``--drain-timeout`` seconds to finish
(a second signal skips the wait), then the worker gets SIGINT (and SIGKILL, with any flow run
left, after 10 s), then the server is stopped only if this command started it. Exit 1 when the
worker or our server dies on its own, so a service manager restarts us.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from filelock import FileLock, Timeout

from deployments import processes
from deployments.api import Api, is_loopback, probe, ui_url
from deployments.routing import (
    FLOWS,
    POOL,
    ensure_queue,
    machine_name,
    pause_queue,
    refuse_foreign,
)
from tasks_lib.core import time as clock
from tasks_lib.core.errors import EXIT_FAILED, EXIT_OK, BadInput, Conflict, OperationFailed
from tasks_lib.core.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
PREFECT = [sys.executable, "-m", "prefect"]
SERVER_START_S = 180.0
DEPLOY_S = 300.0
SETTLE_S = 1.0          # after pausing: a run the worker just took gets to show up as PENDING


@dataclass(frozen=True)
class Options:
    workspace: str | None = None
    port: int = 4200
    health_interval: float | None = None
    machine: str | None = None
    drain_s: float = 120.0


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (connections in TIME_WAIT from the last run are fine)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalServe:
    """One ``clawback serve`` run: the children it started and the order it stops them in."""

    def __init__(self, opts: Options, out: TextIO = sys.stdout) -> None:
        if not 1 <= opts.port <= 65535:
            raise BadInput(f"invalid port {opts.port}", "pass --port between 1 and 65535")
        if opts.health_interval is not None and not 1 <= opts.health_interval <= 86400 * 7:
            raise BadInput(f"invalid --health-interval {opts.health_interval:g}",
                           "pass a number of seconds from 1 to 604800")
        if opts.drain_s < 0:
            raise BadInput("--drain-timeout cannot be negative")
        if not (REPO / "prefect.yaml").is_file():
            raise OperationFailed(f"no prefect.yaml in {REPO}", "run clawback from its checkout "
                                  "(make venv installs it from there, editable)")
        self.opts = opts
        self.ws = Workspace.discover(opts.workspace)
        self.machine = machine_name(opts.machine)
        self.home = self.ws.ensure_state_dir() / "prefect"
        self.home.mkdir(exist_ok=True)
        self.out = out
        self.signals = processes.Signals()
        self.url = ""
        self.api: Api | None = None
        self.server: subprocess.Popen[bytes] | None = None     # only if we started it
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_since = clock.now_utc()
        self.t0 = time.monotonic()
        self.why = "error"                     # why it stops when no signal asked it to

    @staticmethod
    def _since(t: float) -> str:
        return f"{time.monotonic() - t:.1f} s"

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> int:
        lock = FileLock(self.home / "serve.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise Conflict(f"{self.ws.root} is already served by another `clawback serve`",
                           "stop that one first (it holds .clawback/prefect/serve.lock)") from None
        self.signals.install()
        try:
            code = self._start() if not self.signals.stopping else EXIT_OK
            return self._watch() if code == EXIT_OK and not self.signals.stopping else code
        finally:
            self._stop()
            self.signals.restore()
            if self.api is not None:
                self.api.close()
            lock.release()

    def _start(self) -> int:
        self.say(f"clawback serve: workspace {self.ws.root}, machine {self.machine}")
        self.url = self._server()
        if not self.url:
            return EXIT_OK                                  # stopped while the server started
        self.api = Api(self.url)
        refuse_foreign(self.api, self.machine, self.ws.root)
        ensure_queue(self.api, self.machine, self.home, self.say)
        env = self._env(PREFECT_WORKER_QUERY_SECONDS="2")
        self.worker_since = clock.now_utc()
        self.worker = processes.spawn(
            [*PREFECT, "worker", "start", "--pool", POOL, "--work-queue", self.machine,
             "--type", "process", "--name", f"{self.machine}-{os.getpid()}",
             "--install-policy", "never"], env)
        self._deploy()
        if self.signals.stopping:
            return EXIT_OK
        self.say(f"  work queue   {self.machine} in pool {POOL}: worker pid {self.worker.pid}, "
                 f"polls every {env['PREFECT_WORKER_QUERY_SECONDS']} s")
        self.say(f"  Prefect UI   {ui_url(self.url)}")
        self.say(f"ready in {self._since(self.t0)}. Ctrl-C or SIGTERM stops it (a second one "
                 "stops without waiting for flow runs).")
        return EXIT_OK

    def _watch(self) -> int:
        while not self.signals.stopping:
            self.signals.sleep(1.0)
            for what, proc in (("the worker", self.worker), ("the Prefect server", self.server)):
                if proc is not None and proc.poll() is not None and not self.signals.stopping:
                    self.why = f"{what} exited ({proc.returncode})"
                    return EXIT_FAILED
        return EXIT_OK

    # -- start -----------------------------------------------------------------------------
    def _env(self, **defaults: str) -> dict[str, str]:
        """Our environment for a child: the API chosen, this workspace and machine."""
        env = {**defaults, **os.environ}
        env.update(PREFECT_API_URL=self.url, CLAWBACK_HOME=str(REPO),
                   CLAWBACK_WORKSPACE=str(self.ws.root), CLAWBACK_MACHINE=self.machine)
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        return env

    def _server(self) -> str:
        given = os.environ.get("PREFECT_API_URL", "").strip()
        if given:
            found = probe(given)
            if found == "prefect":
                self.say(f"  Prefect API  {given} (PREFECT_API_URL, running)")
                return given
            if not is_loopback(given):
                raise OperationFailed(f"the Prefect API in PREFECT_API_URL ({given}) does not "
                                      "answer", hint="start that server, or unset PREFECT_API_URL "
                                      "to have clawback serve start one on this machine")
            self.say(f"  note: PREFECT_API_URL ({given}) does not answer; using 127.0.0.1:"
                     f"{self.opts.port}")
        url = f"http://127.0.0.1:{self.opts.port}/api"
        found = probe(url)
        if found == "prefect":
            self.say(f"  Prefect API  {url} (already running)")
            return url
        if found == "other" or not _port_free(self.opts.port):
            raise BadInput(f"port {self.opts.port} on 127.0.0.1 is in use by something that is "
                           "not a Prefect server", "pass --port with a free port")
        self.url, t = url, time.monotonic()
        log = self.home / "server.log"
        self.server = processes.spawn(
            [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.opts.port)],
            {**self._env(), "PREFECT_HOME": str(self.home)}, log=log)
        if not self._until(lambda: probe(url) == "prefect", SERVER_START_S, self.server, log,
                           "the Prefect server did not answer /api/health"):
            return ""
        self.say(f"  Prefect API  {url} (started here in {self._since(t)}, pid "
                 f"{self.server.pid}; database and log in {self.home})")
        return url

    def _until(self, ready: Callable[[], bool], timeout_s: float,
               proc: subprocess.Popen[bytes], log: Path, failure: str) -> bool:
        """Wait for ``ready()``; False if stopped meanwhile; an error if ``proc`` ends first."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.signals.stopping:
                return False
            if proc.poll() is not None or time.monotonic() > deadline:
                raise OperationFailed(f"{failure} (see {log}):\n{processes.tail(log)}")
            self.signals.sleep(0.5)
        return True

    def _deploy(self) -> None:
        assert self.api is not None and self.worker is not None
        log, t = self.home / "deploy.log", time.monotonic()
        log.write_bytes(b"")
        code = processes.run_logged([*PREFECT, "--no-prompt", "deploy", "--all"], self._env(),
                                    cwd=REPO, log=log, timeout_s=DEPLOY_S,
                                    stopping=lambda: self.signals.stopping)
        if code == -1 and self.signals.stopping:
            return
        missing = [f for f in FLOWS if self.api.deployment(f, self.machine) is None]
        if code != 0 or missing:
            raise OperationFailed(f"prefect deploy --all failed (exit {code}; see {log}):\n"
                                  f"{processes.tail(log)}")
        health = self.api.deployment("health", self.machine) or {}
        if self.opts.health_interval is not None:
            self.api.set_interval(health, self.opts.health_interval)
            health = self.api.deployment("health", self.machine) or {}
        every = ", ".join(f"every {s['schedule'].get('interval', '?'):g} s"
                          for s in health.get("schedules") or []) or "no schedule"
        names = ", ".join(f"{f}/{self.machine}" + (f" ({every})" if f == "health" else "")
                          for f in FLOWS)
        self.say(f"  deployments  {names} (deployed in {self._since(t)})")

    # -- stop ------------------------------------------------------------------------------
    def _stop(self) -> None:
        if self.worker is not None or self.server is not None:
            self.say(f"clawback serve: stopping ({self.signals.name() or self.why})")
        if self.worker is not None:
            self._pause_queue()
            self._drain()
            leftover = processes.children(self.worker)
            clean = processes.stop(self.worker, first=signal.SIGINT, grace_s=10, also=leftover)
            self.say("  worker stopped" + ("" if clean else " (killed after 10 s)")
                     + (f"; killed {len(leftover)} unfinished flow run(s)" if leftover else ""))
        if self.server is not None:
            processes.stop(self.server, first=signal.SIGTERM, grace_s=20)
            self.say("  Prefect server stopped")

    def _pause_queue(self) -> None:
        try:
            assert self.api is not None
            pause_queue(self.api, self.machine, self.home)
        except Exception as exc:  # noqa: BLE001 - the API may be gone; stopping goes on
            self.say(f"  could not pause the work queue {self.machine}: {exc}")
            return
        self.say(f"  paused the work queue {self.machine}: no new flow runs start here")

    def _drain(self) -> None:
        """Wait up to --drain-timeout for the worker's flow runs (its child processes, and runs
        it has taken but not started yet) to finish."""
        assert self.worker is not None and self.api is not None
        self.signals.sleep(SETTLE_S)
        deadline = time.monotonic() + self.opts.drain_s
        told = False
        while (not self.signals.hurry and time.monotonic() < deadline
               and self.worker.poll() is None):
            running = processes.children(self.worker)
            pending = self._pending()
            if not running and not pending:
                return
            if not told:
                self.say(f"  waiting up to {self.opts.drain_s:g} s for {len(running) or len(pending)} "
                         "flow run(s) in flight (signal again to stop at once)")
                told = True
            self.signals.sleep(1.0)

    def _pending(self) -> list[dict[str, Any]]:
        """Runs of our queue taken (PENDING) since our worker started and not started yet."""
        assert self.api is not None
        try:
            return self.api.runs_in(POOL, self.machine, ["PENDING"], since=self.worker_since)
        except Exception:  # noqa: BLE001 - the API may be gone: then only local processes count
            return []


def serve(opts: Options, out: TextIO = sys.stdout) -> int:
    """Run ``clawback serve`` until a signal (0) or a child's death (1)."""
    return LocalServe(opts, out).run()
