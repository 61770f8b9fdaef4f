"""Tag and commit objects read as bytes, shown the way ``git for-each-ref`` shows them.

GitPython's ``TagObject`` decodes the whole object with ``errors="replace"``, which loses any
byte of a message or tagger that is not UTF-8; these read the raw object (from GitPython's
persistent ``cat-file``) and decode with ``surrogateescape``, as every other git text here.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# Lines that start a signature at the end of a tag message (git's gpg-interface.c).
_SIGNATURE_STARTS = (
    b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----",
    b"-----BEGIN SIGNED MESSAGE-----", b"-----BEGIN SSH SIGNATURE-----",
)


@dataclass(frozen=True)
class RawTag:
    object: str     # what the tag points at (one level, git's %(*objectname))
    tagger: str     # "Name <email>", or "" for a tag without a tagger line
    date: str       # ISO 8601 strict, or ""
    message: str    # everything after the header, surrogateescape


def split_object(raw: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """(first value of each header field, message) of a tag or commit object."""
    head, _, message = raw.partition(b"\n\n")
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key and not line.startswith(b" "):
            fields.setdefault(key, value)
    return fields, message


def parse_tag(raw: bytes) -> RawTag:
    fields, message = split_object(raw)
    tagger, date = _ident(fields.get(b"tagger", b""))
    return RawTag(object=fields.get(b"object", b"").decode("ascii", "replace"), tagger=tagger,
                  date=date, message=message.decode("utf-8", "surrogateescape"))


def subject(raw_object: bytes) -> str:
    """git's ``%(contents:subject)``: the message's first paragraph on one line, the
    signature left out."""
    _, message = split_object(raw_object)
    sig = len(message)
    pos = 0
    for line in message.splitlines(keepends=True):
        if line.startswith(_SIGNATURE_STARTS):
            sig = pos
        pos += len(line)
    body = message.lstrip(b"\n")
    sig -= len(message) - len(body)
    end = body.find(b"\n\n")
    if end < 0:
        end = body.find(b"\r\n\r\n")
    end = min(end, sig) if end >= 0 else sig
    text = body[:end].rstrip(b"\r\n")
    return text.replace(b"\r\n", b" ").replace(b"\n", b" ").decode("utf-8", "surrogateescape")


def ref_matches(refname: str, pattern: str) -> bool:
    """``git for-each-ref PATTERN``: the ref itself or anything below it when the pattern has no
    glob, else a glob whose ``*`` and ``?`` do not cross ``/``."""
    if not any(c in pattern for c in "*?["):
        prefix = pattern.rstrip("/")
        return refname == prefix or refname.startswith(prefix + "/")
    have, want = refname.split("/"), pattern.split("/")
    return len(have) == len(want) and all(
        fnmatch.fnmatchcase(h, w) for h, w in zip(have, want, strict=True))


def _ident(value: bytes) -> tuple[str, str]:
    """("Name <email>", ISO 8601 strict date) of an ident line's value."""
    if not value:
        return "", ""
    lt = value.find(b"<")
    gt = value.find(b">", lt + 1)
    if lt < 0 or gt < 0:
        return value.decode("utf-8", "surrogateescape").strip(), ""
    who = (value[:lt].rstrip() + b" " + value[lt:gt + 1]).decode("utf-8", "surrogateescape")
    stamp = value[gt + 1:].split()
    try:
        seconds, tz = int(stamp[0]), stamp[1]
        minutes = int(tz[1:3]) * 60 + int(tz[3:5])
        offset = timezone(timedelta(minutes=-minutes if tz[:1] == b"-" else minutes))
        date = datetime.fromtimestamp(seconds, offset).isoformat()
    except (IndexError, ValueError, OverflowError, OSError):
        date = ""
    return who.strip(), date
