"""Alerts through apprise (docs/design.md, "Health"). Plain Python, no Prefect.

``notify_urls`` reads the operator's apprise URLs from ``CLAWBACK_NOTIFY_URLS`` (whitespace- or
comma-separated; a comma splits only before another ``scheme://``, so ``mailto://…?to=a@x,b@x``
stays one URL). ``render`` turns an :class:`Alert` into a short English title and body, masked:
values of secret-named environment variables become ``***`` first, then every line goes through
``masking.mask_message`` (URL credentials, webhook ids, ``token=…`` assignments).

``send`` never raises and never blocks for long: it is called while rolling back. Each URL gets its
own ``apprise.Apprise`` so each destination's outcome is known, is retried up to ``attempts`` times
``delay_s`` apart, and is bounded by ``timeout_s`` per attempt (apprise's call timeout; the
plugin's connect and read timeouts are capped at half of it). The URLs hold tokens, so they appear nowhere in what
this module returns or logs: a destination is named by scheme and position (``json:// #1``), and
while sending, records of the ``apprise`` logger (and of urllib3's, which logs the request path
where webhook tokens live) have every fragment of the URL replaced by ``***``. An invalid URL is a
failed destination with ``attempts == 0``. No URL at all is a report with no destinations,
``ok`` True and result ``not-configured`` (nothing was due to be sent; ``log_result`` still
records that the alert was not delivered anywhere).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from tasks_lib.core import safefs
from tasks_lib.core.errors import Conflict
from tasks_lib.secrets import masking
from tasks_lib.secrets.masking import mask_message
from tasks_lib.secrets.values import mask_credentials, secret_by_name

if TYPE_CHECKING:
    from tasks_lib.state.audit import AuditLog

ENV_VAR = "CLAWBACK_NOTIFY_URLS"
TOP_ERRORS = 3
WORKSPACE_FILE = "notify-urls"
MIN_SECRET_CHARS = 4  # shorter secret values cannot be told from ordinary words and numbers
SCRUBBED_LOGGERS = ("apprise", "urllib3.connectionpool")

Kind = Literal["auto-rollback", "auto-rollback-failed", "escalation", "source-errors", "promoted"]
_SPLIT = re.compile(r"\s+|,+(?=\s*[A-Za-z][A-Za-z0-9+.\-]*://)")
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]{0,31})://")
_URL_PARTS = re.compile(r"[/?&#=@:,;\s]+")


def notify_urls(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The apprise URLs from ``CLAWBACK_NOTIFY_URLS`` then ``extra`` (e.g. workspace settings),
    in order, without duplicates."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    urls = [u.strip(", ") for u in _SPLIT.split(raw)] + [u.strip() for u in extra]
    return tuple(dict.fromkeys(u for u in urls if u))


def workspace_urls(state_dir: os.PathLike[str] | str) -> tuple[str, ...]:
    """The workspace's own apprise URLs: ``<state dir>/notify-urls`` (git-ignored, like the rest
    of the state directory, so a token never reaches a commit), one or more per line, ``#``
    comments allowed. None when the file does not exist."""
    try:
        text = safefs.read_state(Path(state_dir) / WORKSPACE_FILE).decode("utf-8")
    except FileNotFoundError:
        return ()
    except Conflict as exc:  # (a FIFO or a link planted there: the environment's URLs still work)
        logging.getLogger(__name__).warning("the workspace's alert URLs are not read: %s", exc.message)
        return ()
    lines = (line.split("#", 1)[0] if line.lstrip().startswith("#") else line
             for line in text.splitlines())
    return notify_urls({ENV_VAR: " ".join(lines)})


@dataclass(frozen=True)
class Alert:
    kind: Kind
    task_id: str
    from_version: str | None = None
    to_version: str | None = None
    error_rate: float | None = None       # a fraction: 0.35 is 35 %
    samples: int = 0
    failures: int = 0
    threshold: float | None = None        # a fraction
    top_errors: tuple[tuple[str, int], ...] = ()
    action: str = ""                      # what was done
    options: tuple[str, ...] = ()         # what the operator can do (escalation_options)
    run_url: str | None = None            # the Prefect run, when a server is used
    workspace: str | None = None          # a name, never a path with a secret in it


def escalation_options(task_id: str, last_stable: str | None, current: str | None) -> tuple[str, ...]:
    """The three options an escalation offers: back to the last stable version, to a chosen
    one, or hold."""
    first = (f"roll back to the last stable version: clawback rollback --task {task_id} "
             f"--to {last_stable}" if last_stable else "no stable version to roll back to (mark one: "
             f"clawback promote --task {task_id} --version V)")
    return (first,
            f"roll back to a chosen version: clawback rollback --task {task_id} --to VERSION "
            f"(clawback history --task {task_id} lists them)",
            f"hold: leave {task_id} at {current or 'its current version'} and investigate")


def _rate(alert: Alert) -> str:
    if alert.error_rate is None:
        return ""
    return f" (error rate {alert.error_rate:.1%}, {alert.failures}/{alert.samples} runs)"


def _title(a: Alert) -> str:
    versions = f"{a.from_version or '?'} → {a.to_version or '?'}"
    return "clawback: " + {
        "auto-rollback": f"{a.task_id} rolled back {versions}{_rate(a)}",
        "auto-rollback-failed": f"{a.task_id} automatic rollback {versions} FAILED{_rate(a)}",
        "escalation": f"{a.task_id} needs a decision at {a.from_version or '?'}{_rate(a)}",
        "source-errors": f"{a.task_id} health source unreadable at {a.from_version or '?'}",
        "promoted": f"{a.task_id} {a.to_version or a.from_version or '?'} promoted to stable",
    }.get(a.kind, f"{a.task_id} {a.kind}")


def _body_lines(a: Alert) -> Iterator[str]:
    yield f"Task: {a.task_id}" + (f" (workspace {a.workspace})" if a.workspace else "")
    if a.from_version and a.to_version and a.from_version != a.to_version:
        yield f"Versions: {a.from_version} → {a.to_version}"
    elif a.from_version or a.to_version:
        yield f"Version: {a.from_version or a.to_version}"
    if a.error_rate is not None:
        limit = f"; threshold {a.threshold:.1%}" if a.threshold is not None else ""
        yield f"Error rate: {a.error_rate:.1%} ({a.failures} of {a.samples} runs failed{limit})"
    ranked = sorted(a.top_errors, key=lambda e: -e[1])[:TOP_ERRORS]
    if ranked:
        yield "Most frequent errors:"
        yield from (f"- {count}× {message}" for message, count in ranked)
    if a.action:
        yield f"Done: {a.action}"
    if a.options:
        yield "Options:"
        yield from (f"{n}. {option}" for n, option in enumerate(a.options, 1))
    if a.run_url:
        yield f"Run: {a.run_url}"


def _secret_env_values(environ: Mapping[str, str], names: Iterable[str] = ()) -> list[str]:
    """What tasks_lib/secrets/masking.py masks, and secret-named values as the config scan judges them."""
    values = {v.strip() for k, v in environ.items()
              if len(v.strip()) >= MIN_SECRET_CHARS and secret_by_name(k, v)}
    values |= set(masking.secret_values(environ, names))
    return sorted(values, key=len, reverse=True)


def _replace_all(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def render(alert: Alert, environ: Mapping[str, str] | None = None,
           names: Iterable[str] = ()) -> tuple[str, str]:
    """(title, body), masked. Secret environment values (and those of ``names``: the variables
    the workspace's tasks declare) are replaced before lines are cut, so a cut never exposes
    part of one."""
    secrets = _secret_env_values(os.environ if environ is None else environ, names)
    title = mask_message(_replace_all(_title(alert), secrets))
    body = "\n".join(mask_message(_replace_all(line, secrets)) for line in _body_lines(alert))
    return title, body


@dataclass(frozen=True)
class Delivery:
    destination: str        # "json:// #1": scheme and position, never the URL
    ok: bool
    attempts: int           # 0: apprise refused the URL, nothing was sent
    error: str | None = None


@dataclass(frozen=True)
class SendReport:
    deliveries: tuple[Delivery, ...] = ()
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every destination accepted the alert (true with no destination: nothing was due)."""
        return all(d.ok for d in self.deliveries)

    @property
    def result(self) -> str:
        if not self.deliveries:
            return "not-configured"
        sent = sum(d.ok for d in self.deliveries)
        return "sent" if self.ok else "failed" if not sent else "partly-sent"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "result": self.result, "duration_s": round(self.duration_s, 3),
                "destinations": [{"destination": d.destination, "ok": d.ok,
                                  "attempts": d.attempts, "error": d.error}
                                 for d in self.deliveries]}


def label(url: str, index: int) -> str:
    """``json:// #1``: how a URL is named anywhere it could be seen."""
    m = _SCHEME.match(url)
    return f"{m.group(1).lower()}:// #{index}" if m else f"(no scheme) #{index}"


def _fragments(url: str) -> list[str]:
    """The URL and every part of it that could be a token, longest first."""
    rest = url.split("://", 1)[-1]
    parts = {p for p in _URL_PARTS.split(rest) if len(p) >= MIN_SECRET_CHARS}
    parts |= {unquote(p) for p in parts if len(unquote(p)) >= MIN_SECRET_CHARS}
    return sorted({url, rest, *parts}, key=len, reverse=True)


def _scrub(text: str, fragments: Iterable[str]) -> str:
    return mask_credentials(_replace_all(text, fragments))


class _ScrubFilter(logging.Filter):
    def __init__(self, fragments: list[str]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info, record.exc_text = (
            _scrub(message, self.fragments), (), None, None)
        return True


@contextmanager
def _scrubbed_logs(fragments: list[str]) -> Iterator[None]:
    """Apprise logs URLs (and urllib3 the request path) at several levels: redact them in place
    for the duration of one delivery; nothing else about logging changes."""
    filt = _ScrubFilter(fragments)
    loggers = [logging.getLogger(name) for name in SCRUBBED_LOGGERS]
    for lg in loggers:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(filt)


def _notify_type(kind: str) -> str:
    return {"promoted": "success", "auto-rollback": "warning"}.get(kind, "failure")


def _deliver(url: str, name: str, title: str, body: str, kind: str, attempts: int,
             delay_s: float, timeout_s: float, sleep: Callable[[float], None]) -> Delivery:
    import apprise  # loads its plugins: only when something is sent

    fragments = _fragments(url)
    with _scrubbed_logs(fragments):
        app = apprise.Apprise()
        if not app.add(url):
            return Delivery(name, False, 0, "apprise refused the URL: unknown scheme, or a "
                                             "required part (token, host, address) is missing "
                                             "or malformed")
        for plugin in app:
            # apprise's connect/read timeouts (cto/rto) capped at half the call's, so a plugin
            # normally ends, and logs, before the call timeout abandons it (and our scrubbing)
            plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, timeout_s / 2)
            plugin.socket_read_timeout = min(plugin.socket_read_timeout, timeout_s / 2)
        error = ""
        for n in range(1, max(attempts, 1) + 1):
            with app.notify(body=body, title=title, notify_type=_notify_type(kind),
                            body_format=apprise.NotifyFormat.TEXT, timeout=timeout_s) as result:
                if result:
                    return Delivery(name, True, n)
                said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
                error = (said[-1] if said else f"apprise reported {result.status.name.lower()}")
            if n < attempts:
                sleep(delay_s)
    return Delivery(name, False, max(attempts, 1), mask_message(_scrub(error, fragments)))


def send(alert: Alert, urls: Iterable[str], *, attempts: int = 3, delay_s: float = 1.0,
         timeout_s: float = 10, sleep: Callable[[float], None] = time.sleep,
         environ: Mapping[str, str] | None = None, names: Iterable[str] = ()) -> SendReport:
    """Send ``alert`` to every URL; never raises. At most about
    ``len(urls) * (attempts * timeout_s + (attempts - 1) * delay_s)`` seconds."""
    start = time.monotonic()
    urls = tuple(urls)
    deliveries = []
    try:
        title, body = render(alert, environ, names)
    except Exception as exc:  # noqa: BLE001 - an alert must never fail a rollback
        failed = f"could not render the alert ({type(exc).__name__})"
        return SendReport(tuple(Delivery(label(u, i), False, 0, failed)
                                for i, u in enumerate(urls, 1)), time.monotonic() - start)
    for i, url in enumerate(urls, 1):
        name = label(url, i)
        try:
            deliveries.append(_deliver(url, name, title, body, alert.kind, attempts, delay_s,
                                       timeout_s, sleep))
        except Exception as exc:  # noqa: BLE001 - a failing destination must not fail a rollback
            reason = mask_message(_scrub(f"{type(exc).__name__}: {exc}", _fragments(url)))
            deliveries.append(Delivery(name, False, 1, f"unexpected error: {reason}"))
    return SendReport(tuple(deliveries), time.monotonic() - start)


def log_result(audit_log: AuditLog, alert: Alert, report: SendReport) -> dict[str, Any]:
    """One ``alert`` audit entry: the destinations by label, the errors masked."""
    return audit_log.append(
        "alert", task=alert.task_id, result=report.result, from_version=alert.from_version,
        to_version=alert.to_version, duration_s=report.duration_s, kind=alert.kind,
        destinations=[d.destination for d in report.deliveries],
        errors=[f"{d.destination}: {d.error}" for d in report.deliveries if not d.ok])
