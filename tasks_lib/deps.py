"""Python dependencies of a task: an exact lock, and a per-task environment synced to it (SPEC §5).

``lock`` resolves a task's loose ``requirements.txt`` into a requirements-format lock with hashes
(``uv pip compile``). ``ensure_env`` makes ``<state>/envs/<TASK>/<digest16>/`` a virtual
environment holding exactly that lock (``uv pip sync``: extras removed) and points
``<state>/envs/<TASK>/current`` at it with an atomic symlink switch. An environment already built
for a lock is reused without calling uv, so switching back to an earlier lock is near-instant.

Package sources: uv reads ``UV_*`` variables and ``uv.toml`` itself; pip's settings (``PIP_*``
variables and pip config files) are translated into uv flags by ``source_args`` for each setting
whose ``UV_*`` counterpart is unset, so an operator's offline wheelhouse keeps working.

Messages quote uv's stderr (credentials in URLs masked) and never the environment.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from tasks_lib import ids
from tasks_lib.errors import DependencyError, MalformedFile, OperationFailed, TransientError

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
_HINT_NETWORK = "a network problem: check connectivity or the index URL and retry"
_MAX_LINES = 15

# ---------------------------------------------------------------------------------------------
# the lock


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


_REQ = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)\Z", re.ASCII | re.DOTALL)
_EDITABLE = ("-e", "--editable")


def _logical_lines(text: str) -> list[str]:
    """Requirements-file lines: comments and blanks dropped, backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


def _canonical_text(text: str) -> str:
    """The stored form: comment and blank lines dropped, lines right-stripped, ``\\n`` ends."""
    lines = [
        raw.rstrip()
        for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    return "".join(line + "\n" for line in lines)


def _parse_entry(line: str) -> tuple[str, bool]:
    """One logical lock line -> (package entry, has a hash)."""
    tokens = line.split()
    if tokens[0] in _EDITABLE or tokens[0].startswith("--editable="):
        if tokens[0].startswith("--editable="):
            target = tokens[0].split("=", 1)[1]
        else:
            target = tokens[1] if len(tokens) > 1 else ""
        if not target:
            raise MalformedFile(f"lock line without a target: {line[:80]!r}")
        return f"-e {target}", False
    if tokens[0].startswith("-"):
        # only requirement lines with per-requirement --hash options belong in a lock: an
        # option like -r/-c/--index-url in a stored lock would be followed by uv at restore
        raise MalformedFile(
            f"unexpected option in lock: {tokens[0][:40]!r}",
            "a lock holds only `name==version` lines with --hash options",
        )
    spec, hashes = line, False
    m = re.search(r"\s-", line)
    if m:
        spec, rest = line[: m.start()], line[m.start() :]
        for opt in re.findall(r"(?:^|\s)(-[^\s=]*)", rest):
            if opt != "--hash":
                raise MalformedFile(f"unexpected option in lock: {opt[:40]!r}")
        hashes = bool(re.search(r"--hash[=\s]+[A-Za-z0-9]+:[0-9A-Za-z]+", rest))
    req = _REQ.match(spec.strip())
    if not req:
        raise MalformedFile(f"unreadable lock line: {line[:80]!r}")
    rest = req.group(3).split(";", 1)[0].strip()
    if rest.startswith("@"):
        return f"{normalize(req.group(1))} @ {rest[1:].strip()}", hashes
    return normalize(req.group(1)) + re.sub(r"\s+", "", rest), hashes


@dataclass(frozen=True)
class Lock:
    """An exact, resolved set of packages in requirements format (hashes where available)."""

    text: str
    packages: tuple[str, ...]
    digest: str

    @classmethod
    def from_text(cls, text: str) -> Lock:
        """Parse a lock (with or without hashes); comments and blank lines are dropped."""
        if not isinstance(text, str):
            raise MalformedFile("a lock must be text")
        canonical = _canonical_text(text)
        packages = sorted(_parse_entry(line)[0] for line in _logical_lines(canonical))
        digest = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return cls(text=canonical, packages=tuple(packages), digest=digest)

    @classmethod
    def empty(cls) -> Lock:
        return cls.from_text("")

    @property
    def digest_hex(self) -> str:
        return self.digest.split(":", 1)[1]

    @property
    def is_empty(self) -> bool:
        return not self.packages

    @property
    def hashed(self) -> bool:
        """True when every entry carries a hash (so ``--require-hashes`` can be used)."""
        entries = [_parse_entry(line) for line in _logical_lines(self.text)]
        return bool(entries) and all(has for _, has in entries)


@dataclass(frozen=True)
class EnvInfo:
    path: Path  # the env dir actually used (…/envs/T01/<digest16>)
    python: Path  # its interpreter: <path>/bin/python
    reused: bool  # an env for this lock already existed and was complete
    previous: Path | None  # what `current` pointed at before the switch (None if nothing)
    repaired: bool = False  # verify=True found drift in a reused env and re-synced it


# ---------------------------------------------------------------------------------------------
# uv and its sources


def uv_bin() -> str:
    """The uv executable: the one shipped with the ``uv`` package, else uv on PATH."""
    try:
        from uv import find_uv_bin

        return os.fsdecode(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise DependencyError(
        "uv was not found (needed to lock and sync task environments)",
        "install it into clawback's environment: `pip install uv`",
    )


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_PIP_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")


def _default_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's config files for ``install``, lowest precedence first (as pip orders them)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file and env_file == os.devnull:
        return []  # pip: PIP_CONFIG_FILE=/dev/null disables every config file
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if not (env_file and os.path.exists(env_file)):
        home = Path(environ.get("HOME") or os.path.expanduser("~"))
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    if env_file:
        files.append(Path(env_file))
    return files


def _read_pip_config(files: list[Path]) -> dict[str, str]:
    """Merged ``[global]`` then ``[install]`` values of the files (later files win)."""
    merged: dict[str, dict[str, str]] = {"global": {}, "install": {}}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError:
            continue  # absent or unreadable: pip skips it too
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise MalformedFile(
                f"pip config file {path} cannot be parsed ({type(exc).__name__})",
                "fix or remove it: pip itself refuses to run with it",
            ) from None
        for section in merged:
            if parser.has_section(section):
                for key, value in parser.items(section):
                    merged[section][key.lower().lstrip("-").replace("_", "-")] = value
    return {**merged["global"], **merged["install"]}


def _local_path(value: str) -> Path | None:
    """The local path a ``file:`` URL or plain path names; None for a remote URL."""
    if value.startswith("file:"):
        parsed = urlparse(value)
        return Path(unquote(parsed.path or "/"))
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        return None
    return Path(os.path.abspath(os.path.expanduser(value)))


def _usable(values: list[str], *, index: bool) -> list[str]:
    """Drop file URLs and local paths that don't exist (pip only warns, uv would fail)."""
    out: list[str] = []
    for value in values:
        path = _local_path(value)
        if path is None:
            out.append(value)
        elif not path.exists():
            continue
        elif value.startswith("file:"):
            out.append(value)
        else:
            out.append(path.as_uri() if index else str(path))
    return out


def _is_set(environ: Mapping[str, str], *names: str) -> bool:
    return any(environ.get(n, "").strip() for n in names)


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def source_args(
    environ: Mapping[str, str] | None = None, config_files: list[Path] | None = None
) -> list[str]:
    """uv flags translating pip's package-source settings (env vars win over config files).

    Only settings whose uv counterpart is unset are translated: index-url (UV_INDEX_URL /
    UV_DEFAULT_INDEX), extra-index-url (UV_EXTRA_INDEX_URL / UV_INDEX), find-links
    (UV_FIND_LINKS), no-index (UV_NO_INDEX). When index lookups are disabled (UV_NO_INDEX or
    pip's no-index) no index URL is translated: pip would ignore them. ``config_files`` are
    pip config files lowest precedence first; None means pip's own locations.
    """
    env = os.environ if environ is None else environ
    files = _default_config_files(env) if config_files is None else list(config_files)
    settings = _read_pip_config(files)
    for key in _PIP_KEYS:
        value = env.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None and value.strip():
            settings[key] = value

    if _is_set(env, "UV_NO_INDEX"):
        pip_no_index = None
        no_index = bool(_truthy(env.get("UV_NO_INDEX")))
    else:
        pip_no_index = _truthy(settings.get("no-index"))
        no_index = bool(pip_no_index)

    args: list[str] = []
    if not no_index:
        if "index-url" in settings and not _is_set(env, "UV_INDEX_URL", "UV_DEFAULT_INDEX"):
            for url in _usable(settings["index-url"].split()[:1], index=True):
                args += ["--index-url", url]
        if "extra-index-url" in settings and not _is_set(env, "UV_EXTRA_INDEX_URL", "UV_INDEX"):
            for url in _usable(settings["extra-index-url"].split(), index=True):
                args += ["--extra-index-url", url]
    if "find-links" in settings and not _is_set(env, "UV_FIND_LINKS"):
        for link in _usable(settings["find-links"].split(), index=False):
            args += ["--find-links", link]
    if pip_no_index:
        args.append("--no-index")
    return args


# ---------------------------------------------------------------------------------------------
# running uv

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_RESOLUTION = re.compile(
    r"no solution found|not found in the (package registry|provided package locations)"
    r"|unsatisfiable|hash mismatch|file not found|no such file|failed to parse|invalid"
    r"|client error \(4\d\d|externally managed|requires-python|doesn't match|does not match",
    re.IGNORECASE,
)
_NETWORK = re.compile(
    r"failed to fetch|error sending request|connection (refused|reset|closed|aborted)"
    r"|connect error|timed out|timeout|dns error|failed to lookup address|name or service not known"
    r"|temporary failure in name resolution|network is unreachable|server error \(5\d\d"
    r"|\b5\d\d (internal server error|bad gateway|service unavailable|gateway timeout)"
    r"|broken pipe|tls handshake|unexpected eof",
    re.IGNORECASE,
)


def _uv_env(environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["UV_NO_PROGRESS"] = "1"
    return env


def _stderr_excerpt(stderr: str) -> str:
    lines = [
        _CREDENTIALS.sub(r"\1****@", _ANSI.sub("", line)).rstrip() for line in stderr.splitlines()
    ]
    lines = [line for line in lines if line.strip() and not line.startswith("Using Python ")]
    if len(lines) > _MAX_LINES:
        lines = lines[:_MAX_LINES] + [f"  ... ({len(lines) - _MAX_LINES} more lines)"]
    return "\n".join("  " + line for line in lines) or "  (uv printed nothing)"


def _failure(what: str, proc: subprocess.CompletedProcess[str], hint: str) -> Exception:
    excerpt = _stderr_excerpt(proc.stderr or "")
    message = f"{what} failed (uv exit {proc.returncode}):\n{excerpt}"
    if not _RESOLUTION.search(proc.stderr or "") and _NETWORK.search(proc.stderr or ""):
        return TransientError(message, _HINT_NETWORK + "; " + hint)
    return DependencyError(message, hint)


def _run_uv(
    args: list[str],
    *,
    what: str,
    hint: str,
    environ: Mapping[str, str] | None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    cmd = [uv_bin(), *args]
    try:
        proc = subprocess.run(
            cmd,
            env=_uv_env(environ),
            cwd=os.fspath(cwd) if cwd is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} timed out after {timeout:g}s", hint) from None
    except OSError as exc:
        raise DependencyError(f"{what}: could not run uv ({exc.strerror or exc})", hint) from None
    if proc.returncode != 0:
        raise _failure(what, proc, hint)
    return proc


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
    args = [
        "pip", "compile", os.fspath(req),
        "--generate-hashes", "--no-header", "--no-annotate",
        "--python", python, "--quiet",
        *source_args(environ),
    ]  # fmt: skip
    proc = _run_uv(
        args,
        what=f"resolving {req.name}",
        hint=_HINT_LOCK,
        environ=environ,
        cwd=cwd if cwd is not None else req.parent,
        timeout=timeout,
    )
    try:
        return Lock.from_text(proc.stdout)
    except MalformedFile as exc:
        raise DependencyError(
            f"uv produced a lock clawback cannot store: {exc.message}", _HINT_LOCK
        ) from None


# ---------------------------------------------------------------------------------------------
# per-task environments


def env_root(state_dir: Path, task_id: str) -> Path:
    return Path(state_dir) / "envs" / ids.task_id(task_id)


def _read_marker(env_dir: Path) -> dict | None:
    try:
        data = json.loads((env_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(env_dir: Path, lk: Lock, python: str) -> None:
    data = {
        "lock_digest": lk.digest,
        "python": python,
        "packages": list(lk.packages),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = env_dir / f".{MARKER}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, env_dir / MARKER)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _link_target(root: Path) -> Path | None:
    """Where ``current`` points (absolute, possibly dangling), or None."""
    try:
        target = os.readlink(root / CURRENT)
    except OSError:
        return None
    return Path(os.path.normpath(root / target))


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
    tmp = root / f".{CURRENT}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.symlink(rel, tmp)
    try:
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OperationFailed(
            f"cannot switch {link} to {target} ({exc.strerror or exc})",
            step="switch environment",
            hint=f"{link} must be a symlink (or absent); move it away and retry",
        ) from None


def current_env(state_dir: Path, task_id: str) -> Path | None:
    """The env dir ``current`` points at, or None (no link, or it points nowhere)."""
    target = _link_target(env_root(state_dir, task_id))
    return target if target is not None and target.is_dir() else None


def _sync(env_dir: Path, lk: Lock, *, environ, cwd, timeout) -> None:
    lock_path = env_dir / LOCK_FILE
    lock_path.write_text(lk.text, encoding="utf-8")
    args = ["pip", "sync", "--python", os.fspath(env_dir / "bin" / "python"), "--quiet"]
    if lk.hashed:
        args.append("--require-hashes")
    args += ["--allow-empty-requirements", os.fspath(lock_path), *source_args(environ)]
    _run_uv(
        args,
        what="installing the locked packages",
        hint=_HINT_SYNC,
        environ=environ,
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
) -> EnvInfo:
    """Make ``envs/<TASK>/<digest16>`` hold exactly ``lk`` and switch ``current`` to it.

    A complete env (marker with this lock's digest and python) is reused without calling uv;
    with ``verify`` its installed set is compared to the lock first and re-synced exactly on
    drift. A dir without a valid marker (interrupted build) is deleted and rebuilt. ``cwd``
    (default ``state_dir``) is where uv runs, i.e. where it discovers ``uv.toml``.
    """
    root = env_root(state_dir, task_id)
    env_dir = root / lk.digest_hex[:16]
    env_python = env_dir / "bin" / "python"
    run_dir = Path(cwd) if cwd is not None else Path(state_dir)
    previous = _link_target(root)

    marker = _read_marker(env_dir)
    reused = bool(
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
            _run_uv(
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
    switch_current(state_dir, task_id, env_dir)
    return EnvInfo(env_dir, env_python, reused, previous, repaired)


def _normalise_freeze_line(line: str) -> str:
    if line.startswith(_EDITABLE):
        return line
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)\Z", line)
    if not m:
        return line
    rest = m.group(2).strip()
    if rest.startswith("@"):
        return f"{normalize(m.group(1))} @ {rest[1:].strip()}"
    return normalize(m.group(1)) + re.sub(r"\s+", "", rest)


def installed(
    python: Path, *, environ: Mapping[str, str] | None = None, timeout: float = 120
) -> tuple[str, ...]:
    """What ``python``'s environment holds: normalised ``name==version``, sorted."""
    proc = _run_uv(
        ["pip", "freeze", "--python", os.fspath(python), "--quiet"],
        what="listing installed packages",
        hint="check that the environment's interpreter exists and runs",
        environ=environ,
        timeout=timeout,
    )
    lines = [line.strip() for line in proc.stdout.splitlines()]
    return tuple(
        sorted(_normalise_freeze_line(line) for line in lines if line and not line.startswith("#"))
    )


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
        _run_uv(
            args + source_args(environ),
            what="installing the pinned packages",
            hint=_HINT_SYNC,
            environ=environ,
            cwd=cwd,
            timeout=timeout,
        )


def prune(state_dir: Path, task_id: str, keep: set[str]) -> list[Path]:
    """Remove complete envs whose lock digest is not in ``keep`` and that are not ``current``.

    ``keep`` holds lock digests (``sha256:<hex>``, bare hex or its 16-char prefix). Dirs
    without a marker (a build in progress or interrupted) are left alone.
    """
    root = env_root(state_dir, task_id)
    keep16 = {k.split(":", 1)[-1][:16] for k in keep}
    current = _link_target(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for child in sorted(root.iterdir()):
        if child.name == CURRENT or child.name.startswith(".") or child.is_symlink():
            continue
        if not child.is_dir():
            continue
        marker = _read_marker(child)
        if marker is None:
            continue
        digest = str(marker.get("lock_digest", ""))
        if child.name in keep16 or digest.split(":", 1)[-1][:16] in keep16:
            continue
        if current is not None and os.path.normpath(child) == os.path.normpath(current):
            continue
        shutil.rmtree(child)
        removed.append(child)
    return removed
