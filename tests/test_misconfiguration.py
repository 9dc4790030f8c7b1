"""Misconfigurations a new site makes, each caught by a check or answered with a JSON error.

Every check id has its trigger in ``test_checks.py``; this file follows a user's mistakes:
several bad ``OFFLINE_SYNC`` keys at once, ``rest_framework`` left out, a table view on a
plain model, and a table whose migration has not run.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps
from django.urls import clear_url_caches, include, path

from django_offline_sync import checks
from django_offline_sync.models import SyncModel
from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from tests.factories import ItemFactory
from tests.models import Item


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_an_unknown_key_does_not_hide_the_errors_of_the_other_keys():
    value = {"PAGE_SIZ": 10, "MAX_TOP": -1, "STAMPING": "sometimes", "DEFAULT_GENERATION": "v9"}
    with override_settings(OFFLINE_SYNC=value):
        messages = checks.check_settings()
        assert sorted(ids(messages)) == [
            "offline_sync.E004",
            "offline_sync.E005",
            "offline_sync.E008",
            "offline_sync.W001",
        ]
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
    report = str(raised.value)
    for check_id in ("W001", "E004", "E005", "E008"):
        assert f"offline_sync.{check_id}" in report


def test_e030_when_a_routed_table_view_names_a_model_that_is_not_a_sync_model(settings):
    from django.contrib.auth.models import User

    router = SyncRouter()
    router.register("User", type("UserViewSet", (SyncViewSet,), {"model": User}), basename="user")
    module = type("urls", (), {"urlpatterns": [path("tables/", include(router.urls))]})
    settings.ROOT_URLCONF = module
    clear_url_caches()
    try:
        messages = checks.check_table_views()
    finally:
        clear_url_caches()
    assert ids(messages) == ["offline_sync.E030"]
    assert messages[0].msg == "UserViewSet needs `model = <a SyncModel subclass>` (or a `queryset` of one)."


# -- a table whose migration has not run --------------------------------------------------------


@pytest.fixture
def unmigrated(settings):
    """Tables routed over a missing table and over an existing one lacking a column."""
    with isolate_apps("tests"):

        class Missing(SyncModel):
            name = models.CharField(max_length=10)

            class Meta(SyncModel.Meta):
                app_label = "tests"
                managed = False
                db_table = "tests_never_migrated"

        class Grown(SyncModel):
            name = models.CharField(max_length=200)
            added = models.IntegerField(default=0)  # a field whose AddField has not run

            class Meta(SyncModel.Meta):
                app_label = "tests"
                managed = False
                db_table = Item._meta.db_table

        router = SyncRouter()
        router.register("Missing", type("MissingViewSet", (SyncViewSet,), {"model": Missing}), basename="missing")
        router.register("Grown", type("GrownViewSet", (SyncViewSet,), {"model": Grown}), basename="grown")
        settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": [path("tables/", include(router.urls))]})
        clear_url_caches()
        yield
    clear_url_caches()


@pytest.mark.parametrize("table", ["Missing", "Grown"])
@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_an_unmigrated_table_answers_a_json_503_naming_the_fix(
    request, transactional_db, unmigrated, table, generation
):
    ItemFactory()
    client = request.getfixturevalue(generation)
    for response in (
        client.get(f"/tables/{table}"),
        client.get(f"/tables/{table}/abc"),
        client.post(f"/tables/{table}", {"name": "x"}, format="json"),
    ):
        assert response.status_code == 503, response.content
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["errorCode"] == "not_migrated"
        assert "python manage.py migrate" in str(body)
    assert Item.all_objects.count() == 1
