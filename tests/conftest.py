import re
import threading

import pytest
from django.core.signals import request_finished, request_started
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


class _RequestsInFlight:
    """Requests a live server's threads have started and not yet finished.

    A live server answers, and only then closes the response, which sends ``request_finished``
    (``close_old_connections`` among its receivers) on the server's thread. A client that has
    its answer can end the test in that window, and the test's teardown then flushes the
    database while the server's thread still uses it: "Database access not allowed" there and,
    on the in-memory SQLite the two threads share, "database table is locked" in the next test.
    Counted off the main thread only: the main thread's requests end before it goes on.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.count = 0

    def started(self, **kwargs) -> None:
        if threading.current_thread() is not threading.main_thread():
            with self.changed:
                self.count += 1

    def finished(self, **kwargs) -> None:
        # Connected after Django's own receivers (django.db connects close_old_connections when
        # it is imported, before this module), so it runs after them.
        if threading.current_thread() is not threading.main_thread():
            with self.changed:
                self.count = max(self.count - 1, 0)
                self.changed.notify_all()

    def settle(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count == 0, timeout)


_IN_FLIGHT = _RequestsInFlight()
request_started.connect(_IN_FLIGHT.started, dispatch_uid="tests.in_flight.started")
request_finished.connect(_IN_FLIGHT.finished, dispatch_uid="tests.in_flight.finished")


@pytest.fixture(autouse=True)
def _live_server_settles(request):
    """After a test with a live server, wait for the server's threads to finish their requests
    before the database is torn down (``_RequestsInFlight``)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before this, so torn down after it
    yield
    # A request still running after 30 s is a hung test's, which its own timeout reports.
    _IN_FLIGHT.settle(timeout=30)


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
