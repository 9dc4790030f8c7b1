import re
import threading
import warnings

import pytest
from rest_framework.test import APIClient

# The loopback OpenID Connect providers (tests/auth/provider), for the sign-in tests here and
# in tests/browser/: one process each per session.
from tests.auth.provider.fixtures import _provider_key, oidc_site, provider, rogue_provider  # noqa: F401

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def pytest_collection_modifyitems(config, items):
    # Backend-specific tests carry requires_postgres and skip elsewhere.
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)")
        for item in items:
            if "requires_postgres" in item.keywords:
                item.add_marker(skip)


class _CountedApp:
    """The live server's WSGI application, counting each request until its response is closed.

    A live server answers, and only then closes the response, which sends ``request_finished``
    (``close_old_connections`` among its receivers) on the server's thread. A client that has
    its answer can end the test in that window, and the test's teardown then flushes the
    database while the server's thread still uses it: "Database access not allowed" there and,
    on the in-memory SQLite the two threads share, "database table is locked" in the next test.
    Counted here, around the whole request, rather than by a signal receiver: it covers every
    receiver of ``request_finished`` whatever their order.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.changed = threading.Condition()
        self.open = 0

    def __call__(self, environ, start_response):
        with self.changed:
            self.open += 1
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self.closed()
            raise
        return _ClosingResult(result, self)

    def closed(self) -> None:
        with self.changed:
            self.open = max(self.open - 1, 0)
            self.changed.notify_all()

    def settle(self, timeout: float) -> None:
        """Wait until every response is closed."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.open == 0, timeout):
                # A response nobody closed (its thread died): say so, and start afresh.
                warnings.warn(f"{self.open} live-server request(s) still open after {timeout} s", stacklevel=2)
                self.open = 0


class _ClosingResult:
    def __init__(self, result, app: _CountedApp) -> None:
        self.result = result
        self.app = app
        self.pending = True

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        # The server closes the result after the last byte, or on a broken connection.
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()  # Django's response: request_finished and all its receivers
        finally:
            if self.pending:
                self.pending = False
                self.app.closed()


@pytest.fixture(autouse=True)
def _live_server_settles(request):
    """After a test with a live server, wait for the server to close its responses before the
    database is torn down (``_CountedApp``)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before this, so torn down after it
    httpd = request.getfixturevalue("live_server").thread.httpd
    app = httpd.get_app()
    if not isinstance(app, _CountedApp):
        app = _CountedApp(app)
        httpd.set_app(app)
    yield
    app.settle(timeout=10)


class ZumoClient(APIClient):
    """An APIClient that speaks one generation: adds ZUMO-API-VERSION (unless v1)."""

    def __init__(self, generation: str = "v2", **kwargs):
        super().__init__(**kwargs)
        self.generation = generation
        if generation == "v2":
            self.credentials(HTTP_ZUMO_API_VERSION="2.0.0")
        elif generation == "v3":
            self.credentials(HTTP_ZUMO_API_VERSION="3.0.0")
        else:
            self.credentials(HTTP_X_ZUMO_APPLICATION="app-key")

    def post_json(self, path, data, **extra):
        return self.post(path, data, format="json", **extra)

    def patch_json(self, path, data, **extra):
        return self.patch(path, data, format="json", **extra)

    def put_json(self, path, data, **extra):
        return self.put(path, data, format="json", **extra)


@pytest.fixture
def v1():
    return ZumoClient("v1")


@pytest.fixture
def v2():
    return ZumoClient("v2")


@pytest.fixture
def v3():
    return ZumoClient("v3")
