"""Settings: a typed, validated object, refreshed under ``override_settings``."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_offline_sync import settings as sync
from django_offline_sync.settings import SyncSettings, get_settings, sync_settings, validate

DEFAULTS = SyncSettings()


def test_defaults_are_returned_when_offline_sync_is_empty():
    assert get_settings() == DEFAULTS
    for field in dataclasses.fields(SyncSettings):
        assert getattr(sync_settings, field.name) == getattr(DEFAULTS, field.name)


def test_defaults_are_returned_when_offline_sync_is_missing(settings):
    del settings.OFFLINE_SYNC
    assert get_settings().PAGE_SIZE == DEFAULTS.PAGE_SIZE


def test_user_value_wins_when_overridden():
    with override_settings(OFFLINE_SYNC={"PAGE_SIZE": 7}):
        assert get_settings().PAGE_SIZE == 7
        assert get_settings().MAX_TOP == DEFAULTS.MAX_TOP
    assert get_settings().PAGE_SIZE == DEFAULTS.PAGE_SIZE


def test_value_refreshes_when_the_setting_changes_after_a_read(settings):
    assert get_settings().STAMPING == "clock"
    settings.OFFLINE_SYNC = {"STAMPING": "now"}
    assert get_settings().STAMPING == "now"


def test_other_setting_changes_keep_the_cached_object_when_unrelated():
    cached = get_settings()
    with override_settings(USE_I18N=False):
        assert get_settings() is cached


def test_unknown_key_raises_attribute_error_when_read_through_the_proxy():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        sync_settings.NOT_A_SETTING


def test_settings_object_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_settings().PAGE_SIZE = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw",
    [["PAGE_SIZE", 3], {"NEXT_LINK_FORMAT": "relative"}, {"PAGE_SIZE": "50"}, {"ENABLED_GENERATIONS": []}],
)
def test_invalid_settings_raise_improperly_configured_when_read_instead_of_a_silent_default(raw):
    with override_settings(OFFLINE_SYNC=raw), pytest.raises(ImproperlyConfigured, match=r"offline_sync\.E00"):
        get_settings()


def test_enabled_generations_become_a_tuple():
    loaded, problems = validate({"ENABLED_GENERATIONS": ["v3", "v2"]})
    assert loaded.ENABLED_GENERATIONS == ("v3", "v2")
    assert problems == []


def test_renamed_key_is_still_read_with_a_warning():
    loaded, problems = validate({"MAX_PAGE_SIZE": 200})
    assert loaded.MAX_TOP == 200
    assert [p.id for p in problems] == ["offline_sync.W003"]
    assert not problems[0].error


def test_new_name_wins_over_the_renamed_one():
    loaded, _ = validate({"MAX_PAGE_SIZE": 200, "MAX_TOP": 300})
    assert loaded.MAX_TOP == 300


def test_validate_never_raises_and_keeps_defaults_for_bad_values():
    loaded, problems = validate({"PAGE_SIZE": "x", "STAMPING": "trigger", "LINK_HEADER": False})
    assert loaded.PAGE_SIZE == DEFAULTS.PAGE_SIZE and loaded.STAMPING == "clock"
    assert loaded.LINK_HEADER is False
    assert sorted(p.id for p in problems) == ["offline_sync.E002", "offline_sync.E008"]


def test_generations_constant_lists_the_three():
    assert sync.GENERATIONS == ("v1", "v2", "v3")
