"""Fixtures for the client tests: clients wired to the example project in-process."""

from __future__ import annotations

import httpx
import pytest

from django_offline_sync.client import SyncClient


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport and keeps every request (method, path) it sent, for asserting order."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.fail_after_next: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if request.method in self.fail_after_next:
            # The server did the work, the answer never arrives: the lost-response case.
            self.fail_after_next.discard(request.method)
            response.read()
            raise httpx.ReadError("connection reset after the server answered")
        return response

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests if r.method != "GET"]


@pytest.fixture
def wsgi_app():
    """The Django app as a WSGI callable, for ``httpx.WSGITransport``.

    Like Django's test client, it keeps the database connection open across requests: the
    request signals would otherwise close the connection that holds the test's transaction
    (on PostgreSQL; SQLite in memory is never closed).
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(params=["v2", "v3"])
def generation(request) -> str:
    return request.param


@pytest.fixture
def device(live_server, tmp_path, generation):
    """``device("phone")`` → a SyncClient with its own store file, talking to the live server over HTTP."""
    clients: list[SyncClient] = []

    def make(name: str, **kwargs) -> SyncClient:
        client = SyncClient(live_server.url, tmp_path / f"{name}.db", generation=generation, timeout=10, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_client(db, tmp_path, wsgi_app, generation):
    """``make_client("phone")`` → a SyncClient with its own store file, talking to the app in-process."""
    clients: list[SyncClient] = []

    def make(name: str = "device", **kwargs) -> SyncClient:
        recorder = RecordingTransport(httpx.WSGITransport(app=wsgi_app))
        kwargs.setdefault("generation", generation)
        kwargs.setdefault("backoff", 0)
        kwargs.setdefault("batch", False)  # these tests watch the single requests; test_batch_push.py batches
        client = SyncClient("http://testserver", tmp_path / f"{name}.db", transport=recorder, **kwargs)
        client.recorder = recorder  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()



class CannedServer:
    """A tiny HTTP server on 127.0.0.1 that gives every request the same canned answer.

    It stands for what a device meets on a bad network, not for our server: a captive portal's
    login page, a redirect to a login site, a reverse proxy's error page. ``requests`` keeps
    (method, path) of every request it received, ``headers_received`` their headers. With
    ``drip`` set, the body goes out one byte at a time, ``drip`` seconds apart: a server
    that never stalls long enough for a read timeout, yet never finishes.
    """

    def __init__(self) -> None:
        import http.server
        import threading
        import time

        self.requests: list[tuple[str, str]] = []
        self.headers_received: list[dict[str, str]] = []
        self.drip = 0.0
        self.status = 200
        self.body = b""
        self.headers: dict[str, str] = {}
        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                canned.requests.append((self.command, self.path))
                canned.headers_received.append(dict(self.headers.items()))
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                if not canned.drip:
                    self.wfile.write(canned.body)
                    return
                try:
                    for index in range(len(canned.body)):
                        self.wfile.write(canned.body[index : index + 1])
                        self.wfile.flush()
                        time.sleep(canned.drip)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format, *args) -> None:  # keep the test output clean
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def answer(self, status: int, body: str | bytes = b"", content_type: str | None = None, **headers: str) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}
        if content_type:
            self.headers["Content-Type"] = content_type

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def canned_server():
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture
def other_server():
    """A second canned server: another origin a redirect may point to."""
    server = CannedServer()
    yield server
    server.close()
