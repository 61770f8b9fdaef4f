"""Calls to the Prefect REST API over plain httpx: the one place that says how clawback
authorises itself to a Prefect server and how much of an answer it reads.

No Prefect import (domain modules stay Prefect-free, and read-only commands and ``clawback
serve`` answer without paying for importing it); httpx itself is imported on first use (~0.2 s).

**Credentials**, from the environment, with the precedence of Prefect's own client
(``prefect.client.orchestration.PrefectClient``: "Prioritize auth_string if provided, otherwise
use api_key"): ``PREFECT_API_AUTH_STRING`` (``user:password``) as HTTP Basic auth, else
``PREFECT_API_KEY`` as a Bearer token, else nothing. Prefect profiles are not read.

**Answers** are read streamed, at most :data:`MAX_ANSWER_BYTES` (a page of flow runs is a few
MiB), with an overall deadline checked between chunks: httpx's timeout bounds each read only, so
a server trickling a byte a second would otherwise never time out.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

MAX_ANSWER_BYTES = 64 << 20


class AnswerTooLarge(Exception):
    """The server sent more than the cap: not read further (the caller says what to check)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit >> 20} MiB")
        self.limit = limit


def auth_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``Authorization`` header for ``env`` (the process environment when None): Basic from
    ``PREFECT_API_AUTH_STRING``, else Bearer from ``PREFECT_API_KEY``, else none."""
    env = os.environ if env is None else env
    auth, key = env.get("PREFECT_API_AUTH_STRING"), env.get("PREFECT_API_KEY")
    if auth:
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    if key:
        return {"Authorization": f"Bearer {key}"}
    return {}


def client(base_url: str = "", *, timeout: float, env: Mapping[str, str] | None = None,
           headers: Mapping[str, str] | None = None,
           transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client carrying :func:`auth_headers` (plus ``headers``)."""
    import httpx

    return httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                        headers={**(headers or {}), **auth_headers(env)})


def health(api_url: str, timeout: float, env: Mapping[str, str] | None = None) -> httpx.Response:
    """``GET <api_url>/health``, authorised (httpx errors are the caller's to read)."""
    with client(timeout=timeout, env=env) as http:
        return http.get(api_url.rstrip("/") + "/health")


def read_capped(http: httpx.Client, method: str, url: str, *, json: Any, deadline: float,
                limit: int = MAX_ANSWER_BYTES) -> tuple[httpx.Response, bytes]:
    """The response to one call and its body, read streamed: :class:`AnswerTooLarge` past
    ``limit`` bytes, ``httpx.ReadTimeout`` once ``deadline`` (``time.monotonic()``) passes."""
    import httpx

    left = deadline - time.monotonic()
    with http.stream(method, url, json=json, timeout=left) as resp:
        chunks, size = [], 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(limit)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the deadline passed while reading")
        return resp, b"".join(chunks)
