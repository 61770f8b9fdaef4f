"""A throwaway PostgreSQL server for the scale-out test (a Prefect server on PostgreSQL).

Debian's ``postgresql`` package (installed by ``.ci/system-packages``): ``initdb`` and
``postgres`` from /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root, and the
tests run as root, so both run as the ``postgres`` system user through ``runuser -u postgres --``
in a temporary directory it owns (not pytest's tmp_path: root's 0700 base directory is closed to
other users). It listens on 127.0.0.1 on a free port (and a Unix socket in that directory only),
trusts loopback connections, and skips durability (fsync off): the data lives as long as the
test module. Stopped by the postmaster's own pid (fast shutdown), never by name.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.prefect_cli import free_port, stop_group

USER = "postgres"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres): "
                           "run .ci/system-packages (make test does)")
    return Path(found[-1]).parent


def _as_postgres(*argv: str | os.PathLike[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *map(str, argv)]


@contextmanager
def postgres(timeout_s: float = 60) -> Iterator[str]:
    """Yield the SQLAlchemy URL (asyncpg) of a fresh PostgreSQL; stop it and delete its files."""
    pg = bin_dir()
    user = pwd.getpwnam(USER)
    root = Path(tempfile.mkdtemp(prefix="clawback-pg-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "postgres.log"
    proc = None
    try:
        subprocess.run(_as_postgres(pg / "initdb", "-D", data, "-U", USER, "--auth=trust",
                                    "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8"),
                       check=True, capture_output=True, timeout=120, cwd=root)
        port = free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                _as_postgres(pg / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port),
                             "-k", root, "-c", "fsync=off", "-c", "synchronous_commit=off",
                             "-c", "full_page_writes=off", "-c", "max_connections=200"),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        deadline = time.monotonic() + timeout_s
        while subprocess.run([pg / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)],
                             check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"postgresql+asyncpg://{USER}@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None:
            _stop(proc, data)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes], data: Path) -> None:
    """Fast shutdown (SIGINT to the postmaster: it ends its sessions and exits), then the
    runuser wrapper's process group for anything left."""
    with suppress(OSError, ValueError, IndexError):
        postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(postmaster, signal.SIGINT)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    stop_group(proc, grace_s=5)
