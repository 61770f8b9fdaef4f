"""A task's dependency lock: an exact, resolved package set in requirements format (docs/design.md,
"What a snapshot guarantees", Dependencies).

``Lock.from_text`` reads what ``uv pip compile --generate-hashes`` writes (or a lock pinned by
hand): comment and blank lines are dropped, names are PEP 503 normalised, and any option but ``-e``
and a per-requirement ``--hash`` is refused, since uv would follow it when the lock is restored.
``freeze_entry`` puts a ``pip freeze`` line into the same form, so an environment's installed
set compares equal to the lock it was synced to. ``credential_entries`` names the entries whose
URL carries a credential (``pkg @ https://user:token@host/...``: uv writes a direct URL into the
lock as it was given), so a new lock holding one is refused before it is stored anywhere.
Messages quote lock lines with URL credentials masked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tasks_lib.core.errors import MalformedFile
from tasks_lib.secrets.values import has_credential_url, mask_credentials

__all__ = ["Lock", "credential_entries", "freeze_entry", "normalize"]


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


def _shown(line: str) -> str:
    """A lock line for a message: credentials in URLs masked, at most 80 characters."""
    return repr(mask_credentials(line)[:80])


def _parse_entry(line: str) -> tuple[str, bool]:
    """One logical lock line -> (package entry, has a hash)."""
    tokens = line.split()
    if tokens[0] in _EDITABLE or tokens[0].startswith("--editable="):
        if tokens[0].startswith("--editable="):
            target = tokens[0].split("=", 1)[1]
        else:
            target = tokens[1] if len(tokens) > 1 else ""
        if not target:
            raise MalformedFile(f"lock line without a target: {_shown(line)}")
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
        raise MalformedFile(f"unreadable lock line: {_shown(line)}")
    return _pin(req.group(1), req.group(3).split(";", 1)[0].strip()), hashes


def _pin(name: str, rest: str) -> str:
    """``name`` normalised with its version spec (spaces dropped) or direct ``@ url``."""
    if rest.startswith("@"):
        return f"{normalize(name)} @ {rest[1:].strip()}"
    return normalize(name) + re.sub(r"\s+", "", rest)


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


def credential_entries(lock: Lock) -> tuple[str, ...]:
    """The entries (package name, or ``-e`` for an editable) whose URL holds a credential:
    ``user:password@``, a token as the user, a secret query parameter. ``${NAME}`` references
    are not credentials: uv keeps them as written and expands them when it installs."""
    found: list[str] = []
    for entry in lock.packages:
        if "://" in entry and has_credential_url(entry):
            name = "-e" if entry.startswith("-e ") else entry.split(" @ ", 1)[0]
            found.append(name)
    return tuple(dict.fromkeys(found))


def freeze_entry(line: str) -> str:
    """A ``pip freeze`` line in the lock's package form (``name==version``, ``name @ url``)."""
    if line.startswith(_EDITABLE):
        return line
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)\Z", line)
    if not m:
        return line
    return _pin(m.group(1), m.group(2).strip())
