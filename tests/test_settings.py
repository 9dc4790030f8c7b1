"""``sync_settings``: defaults, refresh under ``override_settings``, unknown keys."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_offline_sync.settings import DEFAULTS, TYPES, SyncSettings, sync_settings


def test_defaults_are_returned_when_offline_sync_is_empty():
    for key, value in DEFAULTS.items():
        assert getattr(sync_settings, key) == value


def test_defaults_are_returned_when_offline_sync_is_missing(settings):
    del settings.OFFLINE_SYNC
    assert sync_settings.PAGE_SIZE == DEFAULTS["PAGE_SIZE"]


def test_every_default_has_a_type_that_matches_it():
    assert set(TYPES) == set(DEFAULTS)
    for key, value in DEFAULTS.items():
        assert isinstance(value, TYPES[key]), key


def test_user_value_wins_when_overridden():
    with override_settings(OFFLINE_SYNC={"PAGE_SIZE": 7}):
        assert sync_settings.PAGE_SIZE == 7
        assert sync_settings.MAX_PAGE_SIZE == DEFAULTS["MAX_PAGE_SIZE"]
    assert sync_settings.PAGE_SIZE == DEFAULTS["PAGE_SIZE"]


def test_value_refreshes_when_the_setting_changes_after_a_read(settings):
    assert sync_settings.STAMPING == "clock"
    settings.OFFLINE_SYNC = {"STAMPING": "now"}
    assert sync_settings.STAMPING == "now"


def test_other_setting_changes_keep_the_cache_when_unrelated():
    sync_settings.PAGE_SIZE  # fill the cache
    cached = sync_settings._cached
    with override_settings(USE_I18N=False):
        assert sync_settings._cached is cached


def test_unknown_key_raises_attribute_error_when_read():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        sync_settings.NOT_A_SETTING  # noqa: B018


def test_non_dict_setting_falls_back_to_defaults_when_read():
    with override_settings(OFFLINE_SYNC=["PAGE_SIZE", 3]):
        assert sync_settings.PAGE_SIZE == DEFAULTS["PAGE_SIZE"]


def test_separate_instance_uses_its_own_defaults_when_given():
    custom = SyncSettings({"ONLY": 1})
    assert custom.ONLY == 1
    with pytest.raises(AttributeError):
        custom.PAGE_SIZE  # noqa: B018
