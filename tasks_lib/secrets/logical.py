"""A text's logical commands: one command written over several physical lines, joined so the
command-line scan (commands.py) reads it whole, with a map back to the physical offsets so a
finding names the line its value is on and masking hides the value where it is (docs/design.md
"Secrets", red-team round 2 finding 2).

Three spellings are joined:

- a shell ``\\`` continuation (``mysql -u root \\`` newline ``-pVALUE``): the backslash, the line
  break and the next line's indentation become one blank;
- a bracketed list of string literals over several lines (a black-formatted Python argv, a JSON
  array): the line breaks between its items become one blank, so the items read as the
  ``"a", "b"`` of a one-line list;
- adjacent string literals (Python's implicit concatenation, inside the same brackets): the
  closing quote, the blanks and the opening quote between them are dropped.

``logical`` returns the text unchanged (and no map) when none of these is present, so a file
without them costs one pass per spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Logical", "logical"]

_CONTINUATION = re.compile(r"\\\r?\n[ \t]*")
_LIT = r"""[rbuRBUfF]{0,2}(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
# an opening bracket, then string literals separated by commas and blanks (line breaks too),
# then the closing bracket; each literal consumes text, so the pattern cannot backtrack wildly
_GROUP = re.compile(rf"[\[(][ \t]*\n?\s*{_LIT}(?:\s*(?:,\s*)?{_LIT})*\s*,?\s*[\])]")
_BETWEEN = re.compile(rf"({_LIT})(\s*,?\s*)(?={_LIT})")
_PREFIX = re.compile(r"[rbuRBUfF]{0,2}")


@dataclass(frozen=True)
class Logical:
    """``text`` with multi-line commands joined; ``pieces`` are ``(logical_start, physical_start,
    length)`` of the runs copied unchanged, in order (empty: ``text`` is the physical text)."""

    text: str
    pieces: tuple[tuple[int, int, int], ...] = ()

    def physical(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The physical ``(start, end)`` runs that logical ``start:end`` was copied from (a
        value split by a joint comes back as one run per side; inserted blanks map nowhere)."""
        if not self.pieces:
            yield start, end
            return
        for log, phys, length in self.pieces:
            lo, hi = max(start, log), min(end, log + length)
            if lo < hi:
                yield phys + lo - log, phys + hi - log
            elif log >= end:
                return


def _edits(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, replacement)`` of the joints, sorted and disjoint."""
    edits: list[tuple[int, int, str]] = []
    if "\\\n" in text or "\\\r\n" in text:
        edits += [(m.start(), m.end(), " ") for m in _CONTINUATION.finditer(text)]
    if "\n" in text and ('"' in text or "'" in text):
        for group in _GROUP.finditer(text):
            if "\n" not in group.group():
                continue
            for m in _BETWEEN.finditer(text, group.start(), group.end()):
                gap_start, gap_end = m.end(1), m.end(2)
                if "," in m.group(2):
                    if "\n" in m.group(2):
                        edits.append((gap_start, gap_end, ", "))
                    continue
                nxt = _PREFIX.match(text, gap_end)
                quote_at = nxt.end() if nxt else gap_end
                if text[gap_start - 1] == text[quote_at]:  # same quote: "a " "b" -> "a b"
                    edits.append((gap_start - 1, quote_at + 1, ""))
            head = re.match(r"[\[(][ \t]*\n\s*", group.group())
            if head:
                edits.append((group.start() + 1, group.start() + head.end(), " "))
    edits.sort()
    out: list[tuple[int, int, str]] = []
    for e in edits:
        if out and e[0] < out[-1][1]:
            continue
        out.append(e)
    return out


def logical(text: str) -> Logical:
    """``text`` with its multi-line commands joined (module docstring)."""
    edits = _edits(text)
    if not edits:
        return Logical(text)
    parts: list[str] = []
    pieces: list[tuple[int, int, int]] = []
    log = phys = 0
    for start, end, replacement in edits:
        if start > phys:
            pieces.append((log, phys, start - phys))
            parts.append(text[phys:start])
            log += start - phys
        parts.append(replacement)
        log += len(replacement)
        phys = end
    if phys < len(text):
        pieces.append((log, phys, len(text) - phys))
        parts.append(text[phys:])
    return Logical("".join(parts), tuple(pieces))
