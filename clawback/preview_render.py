"""Text of ``clawback preview`` results (``--json`` renders the result objects themselves)."""

from __future__ import annotations

import json
import re
from typing import Any

from clawback.render import table
from tasks_lib.core.filenames import shown

MAX_FILES_SHOWN = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def untrusted(problems: Any) -> list[str]:
    return ["!!! THIS SNAPSHOT DOES NOT VERIFY: do not trust what follows !!!",
            *(f"!!! {p}" for p in problems)]


def summary(s: Any) -> str:
    out = untrusted(s.problems) if s.problems else []
    mark = [k for k in ("current", "stable", "quarantined") if s.marks.get(k)]
    out += [f"preview {s.task_id} {s.version}: tag {s.tag} (commit {s.commit[:12]})"
            f"{'  [' + ', '.join(mark) + ']' if mark else ''}",
            f"  created {s.created_at} by {s.creator}: {s.message or '(no message)'}"]
    if not s.marks.get("recorded"):
        out.append("  (no snapshots[] record of this version in the registry)")
    out.append(f"  location {s.location}; {len(s.files)} files, {_size(s.total_bytes)}")
    rows = [[shown(f.path), str(f.size), {"100755": "exec", "120000": "link"}.get(f.mode, "")]
            for f in s.files[:MAX_FILES_SHOWN]]
    out.append(_indent(table(["file", "bytes", ""], rows)))
    if len(s.files) > MAX_FILES_SHOWN:
        out.append(f"  … and {len(s.files) - MAX_FILES_SHOWN} more (--json lists them all)")
    out.append(f"dependencies: python {s.python}, lock {s.lock_digest[:19]}")
    out.append("  " + (", ".join(s.python_packages) or "(no packages)"))
    out.append("environment variables: " + (", ".join(s.environment_variables) or "(none)"))
    out.append("runtime settings:")
    out += [f"  {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in s.runtime.items()]
    out.append("state paths (never in a snapshot): " + " ".join(s.state_paths))
    masked = f" (secret values masked {', '.join(s.config_masked)})" if s.config_masked else ""
    out.append(f"config {s.config_file}{masked}:")
    out.append(_indent(s.config.rstrip("\n")) if s.config is not None else "  (none at this version)")
    return "\n".join(out)


def terminal_text(text: str) -> str:
    """A file's text for a terminal: control characters (an escape sequence) shown as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def materialized(m: Any) -> str:
    return "\n".join([f"materialised {m.task_id} {m.version} ({m.tag}): {m.files} files, "
                      f"{_size(m.bytes)}", f"  into {shown(str(m.path))}",
                      "  remove it with `clawback preview --cleanup`"])


def smoke(r: Any) -> str:
    from tasks_lib.verify_live import LEVEL_HEADERS

    where = "kept at" if r.kept else "ran in (removed)"
    env = "reused" if r.environment_reused else "built"
    lines = [f"preview --smoke {r.task_id} {r.version}: {'passed' if r.ok else 'FAILED'}",
             table(list(LEVEL_HEADERS), [lv.cells() for lv in r.levels]),
             f"  {where} {shown(r.preview)}",
             f"  environment ({env}, live `current` untouched): {r.environment}",
             "  timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items())]
    return "\n".join(lines)


def cleanup(c: Any) -> str:
    verb = "would remove" if c.dry_run else "removed"
    lines = [f"preview --cleanup: {verb} {len(c.removed)} preview(s)"]
    kept = {p for p, _ in c.left}  # (a directory that stays: only the preview's files went)
    lines += [f"  {verb} the preview's files from {shown(p)}" if p in kept else f"  {verb} {shown(p)}"
              for p in c.removed]
    lines += [f"  left alone {shown(p)}: {why}" for p, why in c.left]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
