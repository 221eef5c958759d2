"""An offline stand-in for the HTTP transport, serving the recorded-format answers in tests/data/.

:class:`FakeServer` replaces :meth:`requests.adapters.HTTPAdapter.send`, the point where
requests hands a prepared request to the network. Everything above it is real: pyvo
and astroquery build their requests, requests follows redirects (UWS answers with
303 See Other) and raises for statuses, and the answers are parsed by the real
parsers. Every request is recorded; one that no route expects fails the test.
"""

import email.parser
import email.policy
import io
import itertools
import logging
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import urllib3

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

    A reply may be a :class:`Reply`, an exception instance (raised, as the transport
    would: time-outs, refused connections) or a callable taking the :class:`Request`.
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

    def send(self, adapter, prepared, **kwargs):
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        request = Request(prepared.method, prepared.url, body, dict(prepared.headers), kwargs.get("timeout"))
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            threading.Event().wait(0.001)  # a moment "on the wire", so overlapping requests would show
            reply = self._reply(request)
            if isinstance(reply, BaseException):
                raise reply
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(reply.body),
                headers=reply.headers,
                status=reply.status,
                reason=HTTPStatus(reply.status).phrase,
                preload_content=False,
                decode_content=False,
                request_method=prepared.method,
                request_url=prepared.url,
            )
            return adapter.build_response(prepared, raw)
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
def server(monkeypatch):
    """A :class:`FakeServer` in place of the network; no request may go unanswered."""
    fake = FakeServer()
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter,
        "send",
        lambda adapter, prepared, **kwargs: fake.send(adapter, prepared, **kwargs),
    )
    yield fake
    assert not fake.unexpected, [f"{r.method} {r.url}" for r in fake.unexpected]


@pytest.fixture
def waits():
    """The waits asked for; pass ``waits.append`` as the ``sleep`` of the code under test."""
    return []


@pytest.fixture(autouse=True)
def restore_logging():
    """The command lines configure the 'xrayclass' logger; give it back as it was."""
    logger = logging.getLogger("xrayclass")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
