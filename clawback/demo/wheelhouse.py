"""Tiny pure-Python wheels written with ``zipfile`` alone: no build backend, no network.

Used by the demo and the tests to make an offline wheelhouse (a ``--find-links`` directory).
The bytes are deterministic (fixed timestamps, fixed order, stored not deflated), so the same
inputs always give the same file and therefore the same ``--hash=sha256:`` in a lock.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from tasks_lib.core import safefs

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z", re.ASCII)
_VERSION = re.compile(r"[A-Za-z0-9.!+]+\Z", re.ASCII)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def normalize(name: str) -> str:
    """PEP 503 normalised project name: ``Clawdemo_Signals`` -> ``clawdemo-signals``."""
    return canonicalize_name(name)


def dist_name(name: str) -> str:
    """The name as it appears in a wheel file name and its ``.dist-info`` (PEP 427/491)."""
    return normalize(name).replace("-", "_")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _check_arcname(path: str) -> str:
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(p in ("", ".", "..") for p in parts)
        or parts[0].endswith((".dist-info", ".data"))
    ):
        raise ValueError(f"invalid module path in wheel: {path!r}")
    return path


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    modules: dict[str, str] | None = None,
    requires: Iterable[str] = (),
) -> Path:
    """Write ``<dist>-<version>-py3-none-any.whl`` into ``dest`` and return its path.

    The wheel always holds ``<pkg>/__init__.py`` (``pkg`` = the normalised name with
    underscores) setting ``__version__``; ``modules`` maps further archive paths relative to
    site-packages (e.g. ``{"clawdemo_signals/core.py": "..."}``) to their text and may replace
    that default ``__init__.py``. ``requires`` become ``Requires-Dist`` lines.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid distribution name: {name!r}")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(f"invalid version: {version!r}")
    requires = list(requires)
    for req in requires:
        if not isinstance(req, str) or not req.strip() or "\n" in req or "\r" in req:
            raise ValueError(f"invalid requirement: {req!r}")

    dist = dist_name(name)
    files: dict[str, bytes] = {f"{dist}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    for path, text in (modules or {}).items():
        files[_check_arcname(path)] = text.encode("utf-8")

    info = f"{dist}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {normalize(name)}",
        f"Version: {version}",
        *(f"Requires-Dist: {req.strip()}" for req in requires),
    ]
    wheel_meta = [
        "Wheel-Version: 1.0",
        "Generator: clawback-wheelhouse",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]
    entries = sorted(files.items())
    entries.append((f"{info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    entries.append((f"{info}/WHEEL", ("\n".join(wheel_meta) + "\n").encode()))
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries)
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode()))

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{dist}-{version}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path, data in entries:
            zi = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            zi.create_system = 3  # unix, whatever the host
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_STORED
            zf.writestr(zi, data)
    safefs.replace_file(target, buf.getvalue(), 0o644)
    return target


def build_wheelhouse(dest: Path, specs: Iterable[tuple[str, str, Iterable[str]]]) -> Path:
    """Build one default wheel per ``(name, version, requires)`` into ``dest``; return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, version, requires in specs:
        build_wheel(dest, name, version, requires=requires)
    return dest
