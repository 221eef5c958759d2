"""An offline stand-in for the network, serving the recorded-format answers in tests/data/.

:class:`FakeServer` replaces :meth:`urllib3.connectionpool.HTTPConnectionPool._make_request`,
the point where urllib3 sends one request on a connection and reads the answer: no
socket is opened. Everything above it is real: pyvo and astroquery build their
requests, urllib3's :class:`~urllib3.util.Retry` retries failed attempts (and sleeps:
the ``waits`` fixture records those sleeps instead), requests follows redirects (UWS
answers with 303 See Other) and raises for statuses, and the answers are parsed by the
real parsers. Every request is recorded; one that no route expects fails the test.
"""

import email.parser
import email.policy
import io
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import urllib3
import urllib3.connectionpool
import urllib3.util.retry

DATA = Path(__file__).resolve().parent / "data"


def data(name):
    return (DATA / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def votable(name, status=200):
    return Reply(status, data(name), {"Content-Type": "application/x-votable+xml"})


def xml(name, status=200):
    return Reply(status, data(name), {"Content-Type": "text/xml"})


def text(body, status=200):
    return Reply(status, body if isinstance(body, bytes) else body.encode(), {"Content-Type": "text/plain"})


def html(name, status):
    return Reply(status, data(name), {"Content-Type": "text/html"})


def redirect(location):
    return Reply(303, b"", {"Location": location})


@dataclass
class Failure:
    """A request that gets no answer: ``"timeout"`` (read time-out) or ``"refused"``."""

    kind: str


#: A read time-out, as urllib3 raises it from a silent socket.
TIMEOUT = Failure("timeout")
#: A refused connection ("[Errno 111] Connection refused").
REFUSED = Failure("refused")


@dataclass
class Request:
    method: str
    url: str
    body: bytes
    headers: dict
    timeout: object

    def form(self):
        """Fields of a url-encoded form body, or of a multipart body, as text."""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return {name: value.decode() for name, (_, value) in self.parts().items()}
        body = self.body.decode() if isinstance(self.body, bytes) else (self.body or "")
        return {k: v[0] for k, v in parse_qs(body).items()}

    def parts(self):
        """Multipart fields: name -> (filename, bytes)."""
        content_type = self.headers["Content-Type"]
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + self.body
        )
        return {
            part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
            for part in message.iter_parts()
        }


class FakeServer:
    """Routes ``(method, URL pattern)`` to replies, served in turn (the last one repeats).

    A reply may be a :class:`Reply`, a :class:`Failure` (:data:`TIMEOUT`,
    :data:`REFUSED`: raised as urllib3 would, so that its retries see them), another
    exception instance (raised as it is: a ``TypeError`` stands for a bug) or a callable
    taking the :class:`Request`.
    """

    def __init__(self):
        self.routes = []
        self.requests = []
        self.unexpected = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def add(self, method, pattern, *replies):
        self.routes.append((method.upper(), re.compile(pattern), list(replies), itertools.count()))
        return self

    def requests_to(self, method, pattern):
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url)]

    def make_request(self, pool, conn, method, url, body=None, headers=None, retries=None, timeout=None, **kwargs):
        """Answer one attempt, as :meth:`HTTPConnectionPool._make_request` would from the network."""
        if isinstance(body, str):
            body = body.encode()
        port = "" if pool.port in (None, 80, 443) else f":{pool.port}"
        full_url = f"{pool.scheme}://{pool.host}{port}{url}"
        read_timeout = getattr(timeout, "read_timeout", timeout)
        request = Request(method, full_url, body or b"", dict(headers or {}), read_timeout)
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            threading.Event().wait(0.001)  # a moment "on the wire", so overlapping requests would show
            reply = self._reply(request)
            if isinstance(reply, Failure) and reply.kind == "timeout":
                raise urllib3.exceptions.ReadTimeoutError(pool, url, f"Read timed out. (read timeout={read_timeout})")
            if isinstance(reply, Failure):
                raise urllib3.exceptions.NewConnectionError(
                    conn, "Failed to establish a new connection: [Errno 111] Connection refused"
                )
            if isinstance(reply, BaseException):
                raise reply
            response = urllib3.HTTPResponse(
                body=io.BytesIO(reply.body),
                headers=reply.headers,
                status=reply.status,
                reason=HTTPStatus(reply.status).phrase,
                preload_content=kwargs.get("preload_content", True),
                decode_content=kwargs.get("decode_content", True),
                request_method=method,
                request_url=full_url,
                retries=retries,
            )
            response._connection = kwargs.get("response_conn")  # as urllib3 sets it: released with the body
            response._pool = pool
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    def _reply(self, request):
        for method, pattern, replies, counter in self.routes:
            if method == request.method and pattern.search(request.url):
                reply = replies[min(next(counter), len(replies) - 1)]
                return reply(request) if callable(reply) and not isinstance(reply, BaseException) else reply
        self.unexpected.append(request)
        return AssertionError(f"unexpected request {request.method} {request.url}")


@pytest.fixture
def waits(monkeypatch):
    """The waits asked for, none really waited.

    urllib3's retries sleep here (its back-off and a service's ``Retry-After``); pass
    ``waits.append`` as the ``sleep`` of code that paces itself (polling a job).
    """
    asked = []
    monkeypatch.setattr(urllib3.util.retry, "time", SimpleNamespace(sleep=asked.append, time=time.time))
    return asked


@pytest.fixture
def server(monkeypatch, waits):
    """A :class:`FakeServer` in place of the network; no request may go unanswered."""
    fake = FakeServer()
    # A proxy from the environment would make urllib3 connect to it before any request.
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)
    monkeypatch.setattr(
        urllib3.connectionpool.HTTPConnectionPool,
        "_make_request",
        lambda pool, conn, method, url, **kwargs: fake.make_request(pool, conn, method, url, **kwargs),
    )
    yield fake
    assert not fake.unexpected, [f"{r.method} {r.url}" for r in fake.unexpected]
