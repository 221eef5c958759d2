"""Clients of the external services, one module per service.

:mod:`~xrayclass.services.csc_tap` asks the Chandra Source Catalog TAP service for the
stage-1 input (``fetch_csc.py``); :mod:`~xrayclass.services.xmatch` asks CDS X-Match for
SIMBAD's classes (``crossmatch.py --online``). Each keeps its URL, time-out and release
as configuration with the defaults in one place, has a dry run that sends nothing, and
turns every failure into a one-line :class:`ServiceError`. Transient failures (no
connection, time-out, HTTP 429 and 5xx) are retried by urllib3 on the
:class:`requests.Session` that pyvo and astroquery send through (:class:`ServiceSession`),
with exponential back-off and the ``Retry-After`` a service asks for.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from xrayclass.exceptions import EXIT_SERVICE_ERROR as EXIT_SERVICE_ERROR
from xrayclass.exceptions import InputError
from xrayclass.exceptions import ServiceError as ServiceError
from xrayclass.text import one_line

__all__ = [
    "DEFAULT_BACKOFF",
    "EXIT_SERVICE_ERROR",
    "MAX_RETRY_AFTER",
    "ServiceError",
    "ServiceSession",
    "attempts",
    "attempts_text",
    "check_retry_policy",
    "failure_kind",
    "http_status",
    "provenance_path",
    "utc_now",
]

log = logging.getLogger(__name__)

#: HTTP statuses a later attempt may not see: "too many requests" and a struggling server's 5xx.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: POST is retried too: the X-Match upload and the TAP query are read-only, and a repeated
#: asynchronous TAP submission only leaves a second job that the service expires.
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"})
#: Back-off factor, seconds: urllib3 retries the first failure at once, then waits
#: ``2 * backoff``, ``4 * backoff``... up to :data:`MAX_BACKOFF`.
DEFAULT_BACKOFF = 2.0
MAX_BACKOFF = 60.0
#: The longest ``Retry-After`` obeyed, seconds; a longer request is cut to this.
MAX_RETRY_AFTER = 600.0


def utc_now() -> str:
    """The current UTC time as ISO 8601 text, to the second."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def provenance_path(output: str | Path) -> Path:
    """The provenance sidecar of an output file: ``<output>.provenance.json``."""
    output = Path(output)
    return output.with_name(output.name + ".provenance.json")


class ServiceRetry(Retry):
    """urllib3's :class:`~urllib3.util.Retry`, logging each retry and capping ``Retry-After``.

    The :class:`~urllib3.exceptions.MaxRetryError` that ends the retries carries the number
    of attempts (``attempts``), so that the message can say how often we tried.
    """

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        try:
            new = super().increment(method, url, response, error, _pool, _stacktrace)
        except urllib3.exceptions.MaxRetryError as exc:
            exc.attempts = len(self.history) + 1  # type: ignore[attr-defined]
            raise
        reason = f"HTTP {response.status}" if response is not None else _short_reason(error)
        delay = (new.get_retry_after(response) if response is not None else None) or new.get_backoff_time()
        log.warning(
            "%s %s%s failed (%s); attempt %d%s in %.0f s",
            method,
            getattr(_pool, "host", ""),
            url,
            one_line(reason, 150),
            len(new.history) + 1,
            f" of {len(self.history) + 1 + self.total}" if isinstance(self.total, int) else "",
            delay,
        )
        return new


def check_retry_policy(retries: int, backoff: float, *, retries_option: str = "the number of retries") -> None:
    """Raise :class:`InputError` unless ``retries`` >= 0 and ``backoff`` >= 0 seconds."""
    if retries < 0:
        raise InputError(f"{retries_option} must be 0 or more, got {retries}")
    if not backoff >= 0:
        raise InputError(f"the retries' back-off must be 0 or more seconds, got {backoff:g}")


class ServiceSession(requests.Session):
    """A :class:`requests.Session` that retries transient failures and times out by default.

    Neither pyvo's synchronous queries nor some astroquery calls pass a time-out, and
    without one a silent server would hang the pipeline for ever. Once the ``retries``
    are spent a failed status is returned, not raised (``raise_on_status=False``), so
    that pyvo and astroquery raise their own errors with the service's answer in them.
    """

    def __init__(
        self, timeout: float, *, retries: int, backoff: float = DEFAULT_BACKOFF, user_agent: str | None = None
    ) -> None:
        super().__init__()
        self.default_timeout = timeout
        policy = ServiceRetry(
            total=retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=RETRY_METHODS,
            backoff_factor=backoff,
            backoff_max=MAX_BACKOFF,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=policy)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        if user_agent:
            self.headers["User-Agent"] = user_agent

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it.

    Followed: ``__cause__``, ``__context__``, pyvo's ``cause``, urllib3's ``reason`` (the
    last failure behind a ``MaxRetryError``) and an exception given as first argument
    (requests wraps urllib3's errors so).
    """
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        yield current
        first = current.args[0] if current.args else None
        behind = (getattr(current, "cause", None), getattr(current, "reason", None), first)
        pending.extend([*behind, current.__cause__, current.__context__])


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc``, or None when there was no HTTP answer."""
    for current in exception_chain(exc):
        response = getattr(current, "response", None)
        if isinstance(current, requests.HTTPError) and response is not None:
            return int(response.status_code)
        code = getattr(current, "code", None)  # pyvo's DALServiceError
        if isinstance(code, int) and not isinstance(code, bool) and code >= 100:
            return code
    return None


def failure_kind(exc: BaseException) -> str:
    """Classify a failed request: ``"timeout"``, ``"connection"``, ``"http"`` or ``"other"``.

    A time-out is looked for first: once urllib3's retries are spent, requests reports a
    read time-out as a ``ConnectionError`` around urllib3's ``ReadTimeoutError``.
    """
    chain = list(exception_chain(exc))
    timeouts = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)
    if any(isinstance(e, timeouts) and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return "timeout"
    if any(isinstance(e, requests.exceptions.ConnectionError | urllib3.exceptions.NewConnectionError) for e in chain):
        return "connection"
    return "other" if http_status(exc) is None else "http"


def _short_reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    kind = failure_kind(exc)
    short = {"timeout": "time-out", "connection": "no connection"}
    return short.get(kind, f"{type(exc).__name__}: {exc}")


def attempts(exc: BaseException) -> int:
    """How many times the request behind ``exc`` was sent (1 when it was not retried)."""
    for current in exception_chain(exc):
        count = getattr(current, "attempts", None)
        if isinstance(count, int):
            return count
        raw = getattr(getattr(current, "response", None), "raw", None)
        history = getattr(getattr(raw, "retries", None), "history", None)
        if history is not None:
            return len(history) + 1
    return 1


def attempts_text(exc: BaseException) -> str:
    """``" after N attempts"`` when a failure was retried, else an empty string."""
    count = attempts(exc)
    return f" after {count} attempts" if count > 1 else ""
