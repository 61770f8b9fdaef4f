"""Python dependencies of a task: an exact lock, and a per-task environment synced to it
(docs/design.md, "What a snapshot guarantees", Dependencies).

``lock`` resolves a task's loose ``requirements.txt`` into a requirements-format lock with hashes
(``uv pip compile``). ``ensure_env`` makes ``<state>/envs/<TASK>/<digest16>/`` a virtual
environment holding exactly that lock (``uv pip sync``: extras removed) and points
``<state>/envs/<TASK>/current`` at it with an atomic symlink switch. An environment already built
for a lock is reused without calling uv, so switching back to an earlier lock is near-instant.

The lock type lives in ``lockfile``, pip's package-source settings (handed to uv through its
environment, never its argv) in ``pipconf`` and the running of uv in ``uvrun``; their public names
are re-exported here. One module because building an environment, switching ``current`` and
reading or putting back what an interpreter holds share one rule for what a package set is (the
lock's pins, compared by canonical name), which split apart could drift.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import ids, safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import (
    Conflict,
    DependencyError,
    MalformedFile,
    OperationFailed,
    SecretsFound,
)
from tasks_lib.deps.lockfile import Lock, credential_entries, entry_name, freeze_entry
from tasks_lib.deps.pipconf import source_args, uv_environ
from tasks_lib.deps.uvrun import run_uv, uv_bin

__all__ = [
    "CURRENT",
    "LOCK_FILE",
    "MARKER",
    "EnvInfo",
    "Lock",
    "current_env",
    "ensure_env",
    "env_root",
    "install_pins",
    "installed",
    "link_target",
    "lock",
    "pin_changes",
    "read_marker",
    "restore_packages",
    "source_args",
    "current_python",
    "switch_current",
    "uv_bin",
]

MARKER = ".clawback-env.json"
LOCK_FILE = "clawback.lock"
CURRENT = "current"

_HINT_LOCK = (
    "check the task's requirements.txt (package names, version constraints); for offline use "
    "set PIP_FIND_LINKS or UV_FIND_LINKS to a wheelhouse directory"
)
_HINT_SYNC = (
    "check that every pinned package is reachable from the configured sources; for offline use "
    "set PIP_FIND_LINKS or UV_FIND_LINKS to a wheelhouse directory holding the pinned wheels"
)

_HINT_CREDENTIALS = (
    "write the URL without `user:token@` and give uv the credentials another way: a netrc entry "
    "(`machine HOST login USER password TOKEN` in ~/.netrc, or the file $NETRC names), keyring "
    "(UV_KEYRING_PROVIDER=subprocess), `${NAME}` references in the URL (kept as written in the "
    "lock, expanded by uv when it installs), or for an index UV_INDEX_URL / UV_INDEX / "
    "UV_EXTRA_INDEX_URL in the environment, with UV_INDEX_<NAME>_USERNAME and "
    "UV_INDEX_<NAME>_PASSWORD for a named index (UV_INDEX=NAME=URL). If the credential was ever "
    "committed, rotate it"
)

# ---------------------------------------------------------------------------------------------
# the lock


def _only_comments(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def lock(
    requirements: Path | None,
    python: str,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> Lock:
    """Resolve ``requirements`` (a requirements.txt) into an exact lock with hashes.

    None, a missing file or one with only comments gives the empty lock. The file is handed to
    uv as is (``-r``, ``-e`` and options inside it keep working) with ``cwd`` = its directory.
    """
    if requirements is None:
        return Lock.empty()
    req = Path(requirements)
    if not req.is_file() or _only_comments(req):
        return Lock.empty()
    req = req.absolute()
    env, flags = uv_environ(environ)
    args = [
        "pip", "compile", os.fspath(req),
        "--generate-hashes", "--no-header", "--no-annotate",
        "--python", python, "--quiet", *flags,
    ]  # fmt: skip
    proc = run_uv(
        args,
        what=f"resolving {req.name}",
        hint=_HINT_LOCK,
        environ=env,
        cwd=cwd if cwd is not None else req.parent,
        timeout=timeout,
    )
    try:
        lk = Lock.from_text(proc.stdout)
    except MalformedFile as exc:
        raise DependencyError(
            f"uv produced a lock clawback cannot store: {exc.message}", _HINT_LOCK
        ) from None
    leaking = credential_entries(lk)
    if leaking:
        raise SecretsFound(
            f"the lock of {req.name} would hold a credential in the URL of "
            f"{', '.join(leaking)} (uv writes a direct URL into the lock as given; the lock is "
            "stored in the snapshot)",
            paths=list(leaking),
            hint=_HINT_CREDENTIALS,
        )
    return lk


# ---------------------------------------------------------------------------------------------
# per-task environments


@dataclass(frozen=True)
class EnvInfo:
    path: Path  # the env dir actually used (…/envs/T01/<digest16>)
    python: Path  # its interpreter: <path>/bin/python
    reused: bool  # an env for this lock already existed and was complete
    previous: Path | None  # what `current` pointed at before the switch (None if nothing)
    repaired: bool = False  # verify=True found drift in a reused env and re-synced it


def env_root(state_dir: Path, task_id: str) -> Path:
    """``<state dir>/envs/<TASK>``, where the task's environments are built, switched and
    deleted: refused (Conflict) when ``envs`` or the task's folder is a symlink or not a
    directory, since a build would then write, and a cleanup delete, wherever it points (another
    task's directory, outside the workspace). The state directory itself may be a link."""
    envs = Path(state_dir) / "envs"
    root = envs / ids.task_id(task_id)
    for path in (envs, root):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(st.st_mode):
            raise Conflict(f"{path} is {'a symlink' if stat.S_ISLNK(st.st_mode) else 'not a directory'}"
                           ": clawback builds and deletes environments only in a real directory "
                           "of its state", f"remove {path} (environments are rebuilt from the "
                           "locks), then retry")
    return root


def read_marker(env_dir: Path) -> dict | None:
    """An environment's marker (written once it is complete), or None: incomplete or no env."""
    try:
        data = json.loads(safefs.read_state(env_dir / MARKER).decode("utf-8"))
    except (OSError, ValueError, Conflict):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(env_dir: Path, lk: Lock, python: str) -> None:
    data = {
        "lock_digest": lk.digest,
        "python": python,
        "packages": list(lk.packages),
        "created_at": clock.format(),
    }
    safefs.replace_file(env_dir / MARKER, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def link_target(root: Path) -> Path | None:
    """Where ``current`` points (absolute, possibly dangling), or None."""
    try:
        target = os.readlink(root / CURRENT)
    except OSError:
        return None
    return Path(os.path.normpath(root / target))


def current_python(state_dir: Path, task_id: str) -> Path | None:
    """The interpreter of the task's current environment, if it has one."""
    py = env_root(state_dir, task_id) / CURRENT / "bin" / "python"
    return py if py.exists() else None


def switch_current(state_dir: Path, task_id: str, target: Path | None) -> None:
    """Point ``current`` at ``target`` atomically (a relative symlink); None removes it."""
    root = env_root(state_dir, task_id)
    link = root / CURRENT
    if target is None:
        if link.is_symlink():
            link.unlink()
        return
    root.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(root))
    try:
        safefs.replace_link(link, rel)
    except OSError as exc:
        raise OperationFailed(
            f"cannot switch {link} to {target} ({exc.strerror or exc})",
            step="switch environment",
            hint=f"{link} must be a symlink (or absent); move it away and retry",
        ) from None


def current_env(state_dir: Path, task_id: str) -> Path | None:
    """The env dir ``current`` points at, or None (no link, or it points nowhere)."""
    target = link_target(env_root(state_dir, task_id))
    return target if target is not None and target.is_dir() else None


def _sync(env_dir: Path, lk: Lock, *, environ, cwd, timeout) -> None:
    lock_path = env_dir / LOCK_FILE
    safefs.replace_file(lock_path, lk.text.encode("utf-8"))
    args = ["pip", "sync", "--python", os.fspath(env_dir / "bin" / "python"), "--quiet"]
    if lk.hashed:
        args.append("--require-hashes")
    env, flags = uv_environ(environ)
    args += ["--allow-empty-requirements", os.fspath(lock_path), *flags]
    run_uv(
        args,
        what="installing the locked packages",
        hint=_HINT_SYNC,
        environ=env,
        cwd=cwd,
        timeout=timeout,
    )


def ensure_env(
    state_dir: Path,
    task_id: str,
    lk: Lock,
    python: str,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    verify: bool = False,
    switch: bool = True,
) -> EnvInfo:
    """Make ``envs/<TASK>/<digest16>`` hold exactly ``lk`` and switch ``current`` to it
    (``switch=False`` only prepares it: a rollback builds before it stops the task).

    A complete env (marker with this lock's digest and python) is reused without calling uv;
    with ``verify`` its installed set is compared to the lock first and re-synced exactly on
    drift. A dir without a valid marker (interrupted build) is deleted and rebuilt. ``cwd``
    (default ``state_dir``) is where uv runs, i.e. where it discovers ``uv.toml``.
    """
    root = env_root(state_dir, task_id)
    env_dir = root / lk.digest_hex[:16]
    env_python = env_dir / "bin" / "python"
    run_dir = Path(cwd) if cwd is not None else Path(state_dir)
    previous = link_target(root)

    marker = read_marker(env_dir)
    reused = not env_dir.is_symlink() and bool(  # (a link there is removed, never built into)
        marker
        and marker.get("lock_digest") == lk.digest
        and marker.get("python") == python
        and env_python.exists()
    )
    repaired = False
    if reused:
        if verify and installed(env_python, environ=environ) != lk.packages:
            (env_dir / MARKER).unlink(missing_ok=True)  # incomplete until synced again
            _sync(env_dir, lk, environ=environ, cwd=run_dir, timeout=timeout)
            _write_marker(env_dir, lk, python)
            repaired = True
    else:
        if env_dir.exists() or env_dir.is_symlink():
            _remove_tree(env_dir)
        root.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            run_uv(
                ["venv", "--python", python, os.fspath(env_dir), "--quiet"],
                what=f"creating the environment for {task_id}",
                hint="check the task's python setting names an installed interpreter",
                environ=environ,
                cwd=run_dir,
                timeout=timeout,
            )
            _sync(env_dir, lk, environ=environ, cwd=run_dir, timeout=timeout)
            _write_marker(env_dir, lk, python)
        except BaseException:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
    if switch:
        switch_current(state_dir, task_id, env_dir)
    return EnvInfo(env_dir, env_python, reused, previous, repaired)


def installed(
    python: Path, *, environ: Mapping[str, str] | None = None, timeout: float = 120
) -> tuple[str, ...]:
    """What ``python``'s environment holds: normalised ``name==version``, sorted."""
    proc = run_uv(
        ["pip", "freeze", "--python", os.fspath(python), "--quiet"],
        what="listing installed packages",
        hint="check that the environment's interpreter exists and runs",
        environ=environ,
        timeout=timeout,
    )
    lines = [line.strip() for line in proc.stdout.splitlines()]
    return tuple(sorted(freeze_entry(line) for line in lines if line and not line.startswith("#")))


def install_pins(
    python: str,
    lk: Lock,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> None:
    """Install the lock's pins into a shared interpreter (not exact: nothing is removed)."""
    if lk.is_empty:
        return
    with tempfile.TemporaryDirectory(prefix="clawback-pins-") as tmp:
        lock_path = Path(tmp) / LOCK_FILE
        lock_path.write_text(lk.text, encoding="utf-8")
        args = ["pip", "install", "--python", python, "--quiet", "-r", os.fspath(lock_path)]
        if lk.hashed:
            args.append("--require-hashes")
        env, flags = uv_environ(environ)
        run_uv(
            args + flags,
            what="installing the pinned packages",
            hint=_HINT_SYNC,
            environ=env,
            cwd=cwd,
            timeout=timeout,
        )


def _by_name(entries: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {entry_name(entry): entry for entry in entries}


def pin_changes(python: Path, lk: Lock, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """The lock's pins that a shared interpreter does not hold as they are (what
    ``install_pins`` would change). An interpreter that cannot be listed counts as changing all."""
    try:
        have = _by_name(installed(python, environ=environ))
    except DependencyError:
        return list(lk.packages)
    want = _by_name(lk.packages)
    return sorted(pin for key, pin in want.items() if have.get(key) != pin)


def restore_packages(python: str, before: list[str], *, environ: Mapping[str, str] | None = None,
                     cwd: Path | None = None, timeout: float = 600) -> None:
    """Put a shared interpreter's packages back as ``before`` (a freeze): remove what was added,
    reinstall (without dependencies) what changed."""
    now = _by_name(installed(Path(python), environ=environ))
    old = _by_name(before)
    added = [key for key in now if key not in old and not key.startswith("-e ")]
    changed = [pin for key, pin in old.items() if now.get(key) != pin and not key.startswith("-e ")]
    if added:
        run_uv(["pip", "uninstall", "--python", python, "--quiet", *added],
               what="removing the packages a failed operation added", hint=_HINT_SYNC,
               environ=environ, cwd=cwd, timeout=timeout)
    if changed:
        env, flags = uv_environ(environ)  # index URLs in uv's environment, never its argv
        run_uv(["pip", "install", "--python", python, "--quiet", "--no-deps", *changed, *flags],
               what="reinstalling the packages a failed operation changed", hint=_HINT_SYNC,
               environ=env, cwd=cwd, timeout=timeout)
