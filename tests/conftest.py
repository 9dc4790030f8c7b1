import re

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
