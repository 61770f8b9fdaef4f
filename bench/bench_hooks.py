"""Each git hook init installs, on the generated 6,000-file workspace: wall time of the hook as
git runs it (the script, its interpreter start included), next to two floors: an empty
``#!/bin/sh`` hook and ``python -c pass``. Target: under 1 s each.

    .venv/bin/python bench/bench_hooks.py [--files 6000] [--repeat 5]

pre-push is timed twice for the tag of the biggest task: trusting ``.clawback/verified/<tag>.json``
for the file hashes (the rule rollback's preflight uses), and in full (the record removed first).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clawback.demo import sample  # noqa: E402


def timed(argv: list[str], root: Path, repeat: int, stdin: bytes = b"",
          before: object = None) -> tuple[float, float, int]:
    """Median wall time, median CPU time (user + system of the hook and its children: what a
    loaded machine inflates least), and the last exit code."""
    runs, cpus, code = [], [], 0
    for _ in range(repeat):
        if callable(before):
            before()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=root, input=stdin, capture_output=True, check=False)
        runs.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        code = proc.returncode
    return statistics.median(runs), statistics.median(cpus), code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-hooks-"))
    wheels = sample.make_wheelhouse(base / "wheels")
    os.environ.update(sample.offline_env(wheels, dict(os.environ)))
    root = sample.make_large_workspace(base / "ws", files=args.files).resolve()
    from flows.init import run_init

    t0 = time.perf_counter()
    result = run_init(str(root))
    print(f"init: {len(result.adopted)} tasks adopted, hooks "
          f"{', '.join(f'{h.name} {h.action}' for h in result.hooks)} in "
          f"{time.perf_counter() - t0:.1f}s; "
          f"{len(sample.git(root, 'ls-files', '-z').split(chr(0))) - 1} versioned files", flush=True)
    hooks = root / ".git" / "hooks"
    empty = base / "empty-hook"
    empty.write_text("#!/bin/sh\nexit 0\n")
    empty.chmod(0o755)

    # pre-commit: one code file changed, and T02's version bumped (the warning path)
    t01 = next(p for p in sorted((root / "tasks/T01").rglob("*.py")) if p.is_file())
    t01.write_text(t01.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    cfg = root / "tasks/T02/config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("version: 2.0.1", "version: 2.0.2"),
                   encoding="utf-8")
    sample.git(root, "add", "--", str(t01), str(cfg))
    tag = "T01-v1.1.0"
    oid = sample.git(root, "rev-parse", f"refs/tags/{tag}").strip()
    push_in = f"refs/tags/{tag} {oid} refs/tags/{tag} {'0' * 40}\n".encode()
    record = root / ".clawback" / "verified" / f"{tag}.json"

    rows = [
        ("floor: empty #!/bin/sh hook", [str(empty)], b"", None),
        ("floor: python -c pass", [sys.executable, "-c", "pass"], b"", None),
        ("pre-commit (1 file + 1 version bump staged)", [str(hooks / "pre-commit")], b"", None),
        (f"pre-push {tag}, trusted record", [str(hooks / "pre-push"), "origin", "x"], push_in, None),
        (f"pre-push {tag}, full verification", [str(hooks / "pre-push"), "origin", "x"], push_in,
         lambda: record.unlink(missing_ok=True)),
        ("post-merge", [str(hooks / "post-merge"), "0"], b"", None),
        ("post-checkout (branch)", [str(hooks / "post-checkout"), oid, oid, "1"], b"", None),
        ("post-checkout (files: no Python)", [str(hooks / "post-checkout"), oid, oid, "0"], b"", None),
    ]
    print(f"\n{'hook':50} {'wall s':>8} {'cpu s':>7} {'exit':>5}   (medians of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for label, argv, stdin, before in rows:
        secs, cpu, code = timed(argv, root, args.repeat, stdin, before)
        print(f"{label:50} {secs:8.3f} {cpu:7.3f} {code:5d}", flush=True)
    has_sync = "sync-registry" in subprocess.run(
        [sys.executable, "-m", "clawback", "--help"], capture_output=True, text=True).stdout
    if not has_sync:
        print("\nnote: this clawback has no sync-registry yet: post-merge/post-checkout time the hook "
              "alone, not the check it will run")


if __name__ == "__main__":
    main()
