"""File names as git and the file system hold them: any bytes but NUL and ``/``.

Inside clawback a name is a ``str`` decoded from git's raw (``-z``) output with
``surrogateescape`` (PEP 383), as ``os.listdir`` gives it: valid UTF-8 reads as itself, and each
byte that is not part of valid UTF-8 becomes one lone surrogate U+DC80..U+DCFF, so
``os.fsencode(name)`` is the exact bytes again. Such a ``str`` cannot be encoded as UTF-8, so every
place that writes text for a file or a person goes through one of these (docs/design.md, "File
names"):

- ``json_text``: JSON for a file or stdout (the manifest, the audit log, ``--json``), with each lone
  surrogate written as its ``\\udcXX`` escape: valid UTF-8, and ``json.loads`` gives the same str;
- ``yaml_safe`` / ``from_yaml_safe``: a value of a YAML document, such a string as ``!!binary``;
- ``shown``: a name for a person, on one line, quoted and escaped when it is not plain.

The one kind of name refused (``unstorable``) is one git itself will not store.
"""

from __future__ import annotations

import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks_lib.gitops.repo import Git

_SURROGATE = re.compile("[\ud800-\udfff]")
# quoted when shown: anything not printable (controls, format characters such as U+202E,
# surrogates), a quote or backslash that would make the escapes ambiguous, or outer whitespace
_PLAIN = re.compile(r"[^\s\"\\](?:[^\"\\]*[^\s\"\\])?|")


def to_bytes(name: str) -> bytes:
    """The name's exact bytes (what ``os.fsencode`` gives on a UTF-8 file system)."""
    return name.encode("utf-8", "surrogateescape")


MAX_TEXT = 2000  # characters of a --reason or --message (a commit subject, a tag's line)


def has_raw_bytes(text: str) -> bool:
    """True when ``text`` holds a byte that is not valid UTF-8 (a lone surrogate)."""
    return _SURROGATE.search(text) is not None


def json_text(text: str) -> str:
    """JSON text from ``json.dumps(..., ensure_ascii=False)`` made valid UTF-8: every lone
    surrogate (only ever inside a JSON string) becomes its ``\\uXXXX`` escape, which
    ``json.loads`` reads back to the same str. Text without one is returned unchanged, so a
    document of UTF-8 names keeps its exact bytes."""
    if not has_raw_bytes(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def yaml_safe(value: Any) -> Any:
    """``value`` with every string holding raw bytes turned into those bytes: YAML writes them
    as ``!!binary`` (base64), which every YAML reader understands (a ``\\uDCxx`` escape is not
    valid YAML for libyaml)."""
    if isinstance(value, str):
        return to_bytes(value) if has_raw_bytes(value) else value
    if isinstance(value, dict):
        return {k: yaml_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [yaml_safe(v) for v in value]
    return value


def from_yaml_safe(value: Any) -> Any:
    """The inverse of ``yaml_safe`` on a loaded document: ``!!binary`` back to the str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {k: from_yaml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_yaml_safe(v) for v in value]
    return value


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def shown(name: str) -> str:
    """A name for a person, on one line: as it is when plain (``tasks/T01/main.py``, Chinese or
    accented letters included), else in double quotes with escapes: ``\\n``, ``\\t``, ``\\"``,
    ``\\\\``, ``\\xNN`` for a byte that is not UTF-8 or a control character, ``\\uNNNN`` for
    another unprintable character (so a right-to-left override cannot disguise a name)."""
    if name.isprintable() and _PLAIN.fullmatch(name):
        return name
    return '"' + "".join(_escape(ch) for ch in name) + '"'


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"   # the raw byte surrogateescape stands for
    if ch.isprintable():
        return ch
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def printable(text: str) -> str:
    """Text for a strict UTF-8 stream: any lone surrogate shown as the byte it stands for."""
    if not has_raw_bytes(text):
        return text
    return _SURROGATE.sub(lambda m: _escape(m.group()), text)


def unstorable(git: Git, root: Path, paths: Iterable[str]) -> list[str]:
    """The ``paths`` (repo-relative, in the working tree under ``root``) whose name git refuses
    to store: a ``.git`` component in another spelling (``.GIT``, ``git~1``, ``.git.``,
    ``.git\\x``: reserved for case-insensitive and Windows file systems, see ``core.protectNTFS``
    and ``core.protectHFS``) or a symlinked ``.gitmodules``. ``git update-index --add`` skips such
    a file with only a warning, so a snapshot would silently leave it out and a rollback's
    backup could not hold it. Git itself judges (an index of placeholder entries in a scratch
    file, nothing read or written in the workspace); a name it accepts is never refused."""
    # only what is a file or symlink now: a tracked path deleted (or become a directory, whose
    # files are listed too) is a removal to git, and would only clash with them in one index
    present = {p: mode for p in paths if (mode := _mode(root / p)) is not None}
    if not present:
        return []
    placeholder = git.empty_tree()  # any id of the repository's hash length that is not null
    lines = b"".join(f"{mode} {placeholder}\t".encode() + to_bytes(p) + b"\0"
                     for p, mode in present.items())
    with tempfile.TemporaryDirectory(prefix="clawback-names-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("update-index", "-z", "--index-info", input=lines, env=env)
        kept = git.run("ls-files", "-z", env=env).stdout.split(b"\0")
    accepted = {p.decode("utf-8", "surrogateescape") for p in kept if p}
    return sorted(p for p in present if p not in accepted)


def refuse_unstorable(git: Git, root: Path, paths: Iterable[str], consequence: str) -> None:
    """UnstorableName (exit 2) naming every file git will not store, and what to do.
    ``consequence`` says what would happen to them, with ``{it}`` for "it" or "them"."""
    from tasks_lib.core.errors import UnstorableName

    bad = unstorable(git, root, paths)
    if not bad:
        return
    listed = ", ".join(shown(p) for p in bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
    it = "them" if len(bad) > 1 else "it"
    raise UnstorableName(
        f"git cannot store the file name{'s' if len(bad) > 1 else ''} {listed}: "
        + consequence.format(it=it), bad,
        f"rename {it} (git reserves `.git` in every spelling, such as .GIT, git~1 or `.git.`, and "
        f"refuses a symlinked .gitmodules), or keep {it} out of the task's versioned files with "
        f".gitignore or the task's clawback.state_paths")


def _mode(path: Path) -> str | None:
    """git's mode for a file or symlink in the working tree; None for anything else."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "120000"
    if not stat.S_ISREG(st.st_mode):
        return None
    return "100755" if st.st_mode & 0o111 else "100644"
