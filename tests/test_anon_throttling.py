"""README's advice for tables open to anonymous clients: DRF throttling works on a SyncViewSet.

The static limits and ``QUERY_TIMEOUT_MS`` bound one query; only a rate limit bounds how many
an anonymous client may send. This checks the README's example as written: ``AnonRateThrottle``
on the view, a rate in ``REST_FRAMEWORK``, and a 429 in the caller's generation's error shape.
"""

import pytest
from django.core.cache import cache
from django.urls import include, path
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Task


class ThrottledTaskViewSet(SyncViewSet):
    model = Task
    throttle_classes = [AnonRateThrottle, UserRateThrottle]


router = SyncRouter()
router.register("Task", ThrottledTaskViewSet, basename="throttled-task")
urlpatterns = [path("tables/", include(router.urls))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def rates(settings):
    cache.clear()  # the throttle's history lives in the cache
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "600/min"},
    }
    # DRF reads the rates when the throttle class is defined; point it at the new ones.
    original = AnonRateThrottle.THROTTLE_RATES
    AnonRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    yield
    AnonRateThrottle.THROTTLE_RATES = original
    cache.clear()


@pytest.mark.parametrize("generation, message_key", [("v2", "message"), ("v3", "title")])
def test_an_anonymous_client_over_its_rate_gets_429_in_its_generations_shape(request, generation, message_key):
    client = request.getfixturevalue(generation)
    for _ in range(3):
        assert client.get("/tables/Task").status_code == 200
    response = client.get("/tables/Task?$filter=" + "contains(text, 'x')")
    assert response.status_code == 429
    body = response.json()
    assert body["errorCode"] == "throttled" and "throttled" in body[message_key].lower()
    assert int(response["Retry-After"]) > 0
