"""The snapshot manifest (docs/design.md, "Snapshot manifest (format 1)"): what pins a task version
byte for byte.

It travels inside git as the message of the annotated version tag, after a marker line, so
``git push --tags`` and a clone carry it. ``digest`` is the sha256 of the canonical JSON of every
other field: a manifest whose digest does not match was corrupted or edited. Format in
docs/design.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from tasks_lib.core import filenames
from tasks_lib.core.errors import VerificationFailed

FORMAT = 1
MARKER = "-----BEGIN CLAWBACK SNAPSHOT-----"
END_MARKER = "-----END CLAWBACK SNAPSHOT-----"


@dataclass(frozen=True)
class FileEntry:
    path: str        # repo-relative posix path; a non-UTF-8 byte as a lone surrogate (filenames.py)
    checksum: str    # "sha256:<hex>" of git's content
    size: int
    mode: str        # git mode: 100644, 100755, 120000


@dataclass(frozen=True)
class Snapshot:
    task_id: str
    version: str
    created_at: str
    git_commit: str
    git_tag: str
    message: str
    creator: str
    location: str
    files: tuple[FileEntry, ...]
    registry_entry: dict[str, Any]          # the entry without history keys
    registry_checksum: str
    python_packages: tuple[str, ...]        # name==version, the exact resolved set
    python_lock: str                        # requirements-format lock with hashes
    python_lock_digest: str
    python_mode: str                        # venv | none | interpreter path
    environment_variables: tuple[str, ...]  # names only, never values
    runtime: dict[str, Any] = field(default_factory=dict)  # run / smoke / health settings
    state_paths: tuple[str, ...] = ()
    format: int = FORMAT
    # a hotfix's base version (metadata ``hotfix_of``, docs/design.md "Hotfix releases"); absent
    # from the document otherwise, so a manifest without it hashes as it always did
    hotfix_of: str | None = None

    # -- serialisation --------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """The operator's layout: metadata, files, dependencies, plus how to run and check it."""
        metadata = {
            "task_id": self.task_id, "version": self.version, "created_at": self.created_at,
            "git_commit": self.git_commit, "git_tag": self.git_tag, "message": self.message,
            "creator": self.creator, "location": self.location,
        }
        if self.hotfix_of is not None:
            metadata["hotfix_of"] = self.hotfix_of
        return {
            "format": self.format,
            "metadata": metadata,
            "files": [asdict(f) for f in self.files],
            "registry": {"entry": self.registry_entry, "checksum": self.registry_checksum},
            "dependencies": {
                "python_packages": list(self.python_packages),
                "python_lock": self.python_lock,
                "python_lock_digest": self.python_lock_digest,
                "python": self.python_mode,
                "environment_variables": list(self.environment_variables),
            },
            "runtime": self.runtime,
            "state_paths": list(self.state_paths),
        }

    @property
    def digest(self) -> str:
        return digest_of(self.body())

    def to_document(self) -> dict[str, Any]:
        return {**self.body(), "digest": self.digest}

    def tag_message(self) -> str:
        subject = f"{self.task_id} version {self.version}"
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        if first:
            subject += f" - {first[:200]}"
        doc = filenames.json_text(json.dumps(self.to_document(), indent=1, ensure_ascii=False))
        return f"{filenames.printable(subject)}\n\n{MARKER}\n{doc}\n{END_MARKER}\n"

    def to_yaml(self) -> str:
        """The exported copy; a string holding a byte that is not UTF-8 (a file name) as
        ``!!binary``, read back by ``parse_yaml``."""
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster
        return yaml.dump(filenames.yaml_safe(self.to_document()), Dumper=dumper, sort_keys=False,
                         allow_unicode=True, width=100)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Snapshot:
        try:
            meta, deps, reg = doc["metadata"], doc["dependencies"], doc["registry"]
            return cls(
                format=int(doc["format"]),
                task_id=meta["task_id"], version=meta["version"], created_at=meta["created_at"],
                git_commit=meta["git_commit"], git_tag=meta["git_tag"], message=meta["message"],
                creator=meta["creator"], location=meta["location"],
                files=tuple(FileEntry(**f) for f in doc["files"]),
                registry_entry=reg["entry"], registry_checksum=reg["checksum"],
                python_packages=tuple(deps["python_packages"]), python_lock=deps["python_lock"],
                python_lock_digest=deps["python_lock_digest"], python_mode=deps["python"],
                environment_variables=tuple(deps["environment_variables"]),
                runtime=doc.get("runtime", {}), state_paths=tuple(doc.get("state_paths", ())),
                hotfix_of=_optional_text(meta.get("hotfix_of")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(f"snapshot manifest is malformed ({exc!s})",
                                     "the tag message was edited or corrupted") from exc


def _optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"metadata.hotfix_of is {type(value).__name__}, not a version")


def digest_of(body: dict[str, Any]) -> str:
    """sha256 of the canonical JSON: sorted keys, compact, UTF-8, a non-UTF-8 byte of a name
    as its ``\\udcXX`` escape (so a manifest of UTF-8 names hashes as it always did)."""
    canonical = filenames.json_text(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Parsed:
    snapshot: Snapshot
    recorded_digest: str | None
    actual_digest: str          # over the document as stored (extra or edited keys count)

    @property
    def intact(self) -> bool:
        return self.recorded_digest == self.actual_digest


def parse_tag_message(message: str) -> Parsed:
    """The manifest inside a tag message; VerificationFailed if there is none or it is garbled."""
    start = message.find(MARKER)
    end = message.find(END_MARKER, start + 1)
    if start < 0 or end < 0:
        raise VerificationFailed("the tag carries no clawback snapshot manifest",
                                 "this tag was not made by clawback; run `clawback init` or `snapshot`")
    raw = message[start + len(MARKER):end]
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise VerificationFailed(f"the snapshot manifest is not valid JSON ({exc.msg})",
                                 "the tag message was edited or corrupted") from exc
    return _parsed(doc, "the tag was edited")


def parse_yaml(text: str) -> Parsed:
    """An exported ``snapshot-<tag>.yaml`` (``Snapshot.to_yaml``), its digest checked as the
    tag's is."""
    try:
        doc = filenames.from_yaml_safe(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise VerificationFailed(f"the exported snapshot is not valid YAML ({exc})",
                                 "export it again from its tag") from exc
    return _parsed(doc, "the exported file was edited")


def _parsed(doc: Any, edited: str) -> Parsed:
    if not isinstance(doc, dict):
        raise VerificationFailed("the snapshot manifest is not an object", edited)
    recorded = doc.pop("digest", None)
    return Parsed(Snapshot.from_document(doc), recorded if isinstance(recorded, str) else None,
                  digest_of(doc))


def sha256_hex(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
