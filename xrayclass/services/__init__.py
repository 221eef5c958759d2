"""Clients of the external services the pipeline can use: one module per service.

* :mod:`xrayclass.services.csc_tap`: the Chandra Source Catalog TAP service (the
  stage-1 input, ``fetch_csc.py``).
* :mod:`xrayclass.services.xmatch`: CDS X-Match against SIMBAD (stage 2,
  ``crossmatch.py --online``).

Each module keeps its service URL, time-out and release as configuration with the
defaults in one place, offers a dry run that shows the request without sending it,
retries transient failures with exponential back-off, and turns every failure into a
:class:`ServiceError` whose message says in one line what failed and what to do.
The helpers here are shared by both.
"""

import datetime
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import requests

from xrayclass.exceptions import EXIT_SERVICE_ERROR as EXIT_SERVICE_ERROR
from xrayclass.exceptions import ServiceError as ServiceError
from xrayclass.text import one_line

log = logging.getLogger(__name__)


#: HTTP statuses worth retrying besides 5xx: "too many requests".
RETRY_STATUSES = (429,)

T = TypeVar("T")


def utc_now() -> str:
    """The current UTC time as ISO 8601 text, to the second."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def provenance_path(output: str | os.PathLike[str]) -> Path:
    """The provenance sidecar of an output file: ``<output>.provenance.json``."""
    output = Path(output)
    return output.with_name(output.name + ".provenance.json")


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it (``__cause__``, ``__context__``, pyvo's ``cause``)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        yield current
        pending.extend([getattr(current, "cause", None), current.__cause__, current.__context__])


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc``, or None when there was no HTTP answer."""
    for current in exception_chain(exc):
        response = getattr(current, "response", None)
        if isinstance(current, requests.HTTPError) and response is not None:
            return response.status_code
        code = getattr(current, "code", None)  # pyvo's DALServiceError
        if isinstance(code, int) and not isinstance(code, bool) and code >= 100:
            return code
    return None


def failure_kind(exc: BaseException) -> str:
    """Classify a failed request: ``"timeout"``, ``"connection"``, ``"http"`` or ``"other"``."""
    chain = list(exception_chain(exc))
    if any(isinstance(e, requests.exceptions.Timeout) for e in chain):
        return "timeout"
    if any(isinstance(e, requests.exceptions.ConnectionError) for e in chain):
        return "connection"
    if http_status(exc) is not None:
        return "http"
    return "other"


def is_transient(exc: BaseException) -> bool:
    """True for failures a later attempt may not see: no connection, time-out, HTTP 5xx or 429."""
    kind = failure_kind(exc)
    if kind in ("timeout", "connection"):
        return True
    status = http_status(exc)
    return status is not None and (status >= 500 or status in RETRY_STATUSES)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a rate-limited service asked us to wait (HTTP ``Retry-After``), if any."""
    for current in exception_chain(exc):
        seconds = getattr(current, "retry_after_seconds", None)  # pyvo's DALRateLimitError
        if isinstance(seconds, (int, float)) and seconds >= 0:
            return float(seconds)
        response = getattr(current, "response", None)
        if response is not None and getattr(response, "headers", None):
            value = response.headers.get("Retry-After", "")
            if value.strip().isdigit():
                return float(value)
    return None


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    retries: int,
    backoff: float = 2.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], object] | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Call ``action()``; on a transient failure wait and try again, up to ``retries`` times.

    The waits grow exponentially: ``backoff``, ``2 * backoff``, ``4 * backoff``... (at
    most ``max_delay``, or what the service asked for with ``Retry-After``). Calls are
    strictly one after the other. ``sleep`` defaults to :func:`time.sleep`. The last
    failure is re-raised with the number of attempts recorded in its ``attempts``
    attribute.
    """
    sleep = sleep or time.sleep
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except Exception as exc:
            if attempt > retries or not transient(exc):
                try:
                    exc.attempts = attempt  # type: ignore[attr-defined]
                except AttributeError:
                    pass
                raise
            delay = retry_after(exc)
            delay = min(max_delay, backoff * 2 ** (attempt - 1)) if delay is None else min(delay, 10 * max_delay)
            log.warning(
                "%s failed (%s); attempt %d of %d in %.0f s",
                what,
                one_line(_short_reason(exc), 150),
                attempt + 1,
                retries + 1,
                delay,
            )
            sleep(delay)


def _short_reason(exc: BaseException) -> str:
    kind = failure_kind(exc)
    if kind == "timeout":
        return "time-out"
    if kind == "connection":
        return "no connection"
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {exc}"


def attempts_text(exc: BaseException) -> str:
    """``" after N attempts"`` when a failure was retried, else an empty string."""
    attempts = getattr(exc, "attempts", 1)
    return f" after {attempts} attempts" if attempts > 1 else ""


class TimeoutSession(requests.Session):
    """A :class:`requests.Session` whose requests time out after ``timeout`` seconds by default.

    Neither pyvo's synchronous queries nor some astroquery calls pass a time-out, and
    without one a silent server would hang the pipeline for ever.
    """

    def __init__(self, timeout: float, user_agent: str | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout
        if user_agent:
            self.headers["User-Agent"] = user_agent

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)
