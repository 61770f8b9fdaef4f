"""Secrets that span lines: private-key blocks, masked as a whole (docs/design.md "Secrets").

A scanner reports a private key at its ``-----BEGIN … PRIVATE KEY-----`` line; its body is
base64 that no line rule can tell from data. Every renderer therefore masks the whole block,
BEGIN line to END line (to the end of the text when the END line is missing: a key cut short
is still a key), before or whatever else it masks per line. Key material is any PEM block whose
label says private or secret (``RSA PRIVATE KEY``, ``OPENSSH PRIVATE KEY``, ``ENCRYPTED PRIVATE
KEY``, ``PGP PRIVATE KEY BLOCK``, ``PGP SECRET KEY BLOCK``) and the SSH2/PuTTY form
(``---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----``); certificates and public keys are not.

Masking keeps each line's break and leading blanks (``  ***`` in a YAML block scalar still
parses, and a diff's line numbers stay right), so the text has as many lines as before. The
block may also be one line of escaped text (``"-----BEGIN …\\nMIIE…\\n-----END …"`` in JSON).
"""

from __future__ import annotations

import re

__all__ = ["block_members", "block_spans", "has_block", "mask_blocks"]

MASK = "***"
_LABEL = r"[A-Z0-9 ]{0,40}(?:PRIVATE|SECRET)[A-Z0-9 ]{0,40}"
_BEGIN = re.compile(rf"-----BEGIN (?P<label>{_LABEL})-----|---- BEGIN (?P<ssh>SSH2 {_LABEL}) ----")
_END = r"-----END {label}-----|---- END {label} ----"


def has_block(text: str) -> bool:
    return "BEGIN" in text and _BEGIN.search(text) is not None


def block_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the private-key blocks in ``text``, BEGIN to END (or to the text's end)."""
    if "BEGIN" not in text:
        return []
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := _BEGIN.search(text, pos)) is not None:
        label = re.escape((m.group("label") or m.group("ssh")).strip())
        end = re.compile(_END.format(label=label)).search(text, m.end())
        stop = end.end() if end else len(text)
        spans.append((m.start(), stop))
        pos = stop
    return spans


def block_members(items: list[object]) -> set[int]:
    """Indexes of ``items`` (a list's elements, a mapping's values in order) that belong to a
    private-key block held one line per element: the strings joined with line breaks, every
    element a block's span touches. A key stored as a YAML list or a numbered mapping is a key."""
    texts = [item if isinstance(item, str) else "" for item in items]
    if len(texts) < 2 or not any("BEGIN" in t for t in texts):
        return set()
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1
    members: set[int] = set()
    for start, end in block_spans("\n".join(texts)):
        members |= {i for i, s in enumerate(starts)
                    if isinstance(items[i], str) and s < end and s + len(texts[i]) >= start}
    return members


# a line's text: up to any break str.splitlines() knows, so the count of lines never changes
_PIECE = re.compile("([ \t]*)([^\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+)")


def mask_blocks(text: str) -> str:
    """``text`` with every private-key block masked, line breaks and indentation kept."""
    spans = block_spans(text)
    for start, end in reversed(spans):
        inner = _PIECE.sub(lambda m: m.group(1) + MASK, text[start:end])
        text = text[:start] + inner + text[end:]
    return text
