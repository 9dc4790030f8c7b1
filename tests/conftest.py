import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    # Backend-specific tests carry requires_postgres and skip elsewhere.
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)")
        for item in items:
            if "requires_postgres" in item.keywords:
                item.add_marker(skip)
