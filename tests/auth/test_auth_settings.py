"""OFFLINE_SYNC["AUTH"]: validation and the system checks it feeds (E050-E052, W050)."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_offline_sync.settings import OIDCProvider, get_settings, validate


def _ids(raw):
    return sorted(p.id for p in validate({"AUTH": raw})[1])


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ({}, []),
        ("yes", ["offline_sync.E050"]),
        ({"TOKEN_LIFETIME": 0}, ["offline_sync.E050"]),
        ({"TOKEN_LIFETIME": True}, ["offline_sync.E050"]),
        ({"LEEWAY": 0, "REFRESH_GRACE": 0}, []),
        ({"LOGIN_RATE": "lots"}, ["offline_sync.E050"]),
        ({"ISSUER": ""}, ["offline_sync.E050"]),
        ({"CUSTOM_LOGIN": "no"}, ["offline_sync.E050"]),
        ({"TOKEN_LIFETIM": 60}, ["offline_sync.W050"]),
        ({"SIGNING_KEYS": "k"}, ["offline_sync.E051"]),
        ({"SIGNING_KEYS": [{"kid": "a", "key": "short"}]}, ["offline_sync.E051"]),
        ({"SIGNING_KEYS": [{"kid": "a", "key": "k" * 32}, {"kid": "a", "key": "j" * 32}]}, ["offline_sync.E051"]),
        ({"SIGNING_KEYS": [{"kid": "", "key": "k" * 32}]}, ["offline_sync.E051"]),
        ({"SIGNING_KEYS": [{"key": "k" * 32}]}, ["offline_sync.E051"]),
        ({"PROVIDERS": []}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"idp": {"issuer": "https://idp.example"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"idp": {"issuer": "idp.example", "client_id": "c"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"custom": {"issuer": "https://idp.example", "client_id": "c"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"Bad Name": {"issuer": "https://idp.example", "client_id": "c"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"idp": {"issuer": "https://i", "client_id": "c", "scope": "x"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"idp": {"issuer": "https://i", "client_id": "c", "scopes": "openid"}}}, ["offline_sync.E052"]),
        ({"PROVIDERS": {"idp": {"issuer": "https://i", "client_id": "c", "create_users": 1}}}, ["offline_sync.E052"]),
    ],
)
def test_auth_validation(raw, ids):
    assert _ids(raw) == ids


def test_a_full_provider_is_read():
    settings, problems = validate(
        {
            "AUTH": {
                "CREATE_USERS": True,
                "PROVIDERS": {
                    "corp": {
                        "issuer": "https://id.example",
                        "client_id": "app",
                        "client_secret": "s3cret",
                        "audiences": ["app", "api"],
                        "create_users": False,
                    }
                },
            }
        }
    )
    assert problems == []
    provider = settings.AUTH.provider("corp")
    assert provider == OIDCProvider(
        name="corp",
        issuer="https://id.example",
        client_id="app",
        client_secret="s3cret",
        audiences=("app", "api"),
        create_users=False,
    )
    assert provider.discovery == "https://id.example/.well-known/openid-configuration"
    assert "s3cret" not in repr(provider)


def test_key_material_is_never_in_messages():
    problems = validate({"AUTH": {"SIGNING_KEYS": [{"kid": "a", "key": "tooshort-secret"}]}})[1]
    assert "tooshort-secret" not in str(problems)


def test_checks_report_and_get_settings_refuses():
    with override_settings(OFFLINE_SYNC={"AUTH": {"TOKEN_LIFETIME": -1}}):
        assert "offline_sync.E050" in [m.id for m in run_checks()]
        with pytest.raises(ImproperlyConfigured, match="TOKEN_LIFETIME"):
            get_settings()
