"""The sign-in tests: each starts with no login throttle spent."""

import pytest


@pytest.fixture(autouse=True)
def _clear_throttles():
    """Login throttles count in Django's cache; each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
