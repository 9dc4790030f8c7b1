"""Site-issued tokens and the X-ZUMO-AUTH / Bearer authentication class, through the real tables."""

from __future__ import annotations

import datetime as dt
import logging

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from django_offline_sync.auth.tokens import decode_token, issue_token, signing_keys
from example_project.tasks.models import Inspection
from tests.conftest import ZumoClient

pytestmark = pytest.mark.django_db

KEY_A = {"kid": "2026-a", "key": "a" * 40}
KEY_B = {"kid": "2026-b", "key": "b" * 40}


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="wonderland-42")


@pytest.fixture
def bob():
    return User.objects.create_user("bob", password="builder-42")


def _rows(client, **headers):
    return client.get("/tables/Inspection", **headers)


def test_zumo_auth_header_signs_in_and_scopes_rows(alice, bob):
    Inspection.objects.create(owner=alice, site="A", pipe_id="1")
    Inspection.objects.create(owner=bob, site="B", pipe_id="2")
    token = issue_token(alice, "custom").token
    response = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token)
    assert response.status_code == 200
    assert [row["site"] for row in response.json()] == ["A"]


def test_bearer_header_signs_in_a_v3_client(alice, bob):
    Inspection.objects.create(owner=bob, site="B", pipe_id="2")
    Inspection.objects.create(owner=alice, site="A", pipe_id="1")
    token = issue_token(alice, "custom").token
    response = _rows(ZumoClient("v3"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert [row["site"] for row in response.json()["items"]] == ["A"]


def test_no_token_is_401_for_a_per_user_table():
    response = _rows(ZumoClient("v2"))
    assert response.status_code == 401
    assert response.json()["errorCode"] == "not_authenticated"


@pytest.mark.parametrize(
    ("generation", "keys"),
    [
        ("v1", {"code", "error", "errorCode"}),
        ("v2", {"message", "error", "errorCode"}),
        ("v3", {"title", "status", "errorCode"}),
    ],
)
def test_expired_token_says_so_in_the_generation_shape(alice, generation, keys):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    token = issue_token(alice, "custom", now=old).token
    response = _rows(ZumoClient(generation), HTTP_X_ZUMO_AUTH=token)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == keys
    assert body["errorCode"] == "token_expired"
    assert "expired" in str(body).lower()
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bad_signature_is_invalid_token(alice):
    token = issue_token(alice, "custom").token
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=forged).json()
    assert body["errorCode"] == "invalid_token"
    assert "signature" in body["message"]


def test_token_signed_with_the_raw_secret_key_is_refused(alice):
    """A token forged with SECRET_KEY itself (not the derived key) does not verify."""
    kid = signing_keys()[0].kid
    forged = jwt.encode(
        {
            "iss": "django-offline-sync",
            "aud": "django-offline-sync",
            "sub": str(alice.pk),
            "iat": 1,
            "exp": 4e9,
            "jti": "x",
        },
        "tests-only-not-secret",
        headers={"kid": kid},
    )
    assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=forged).json()["errorCode"] == "invalid_token"


def test_a_token_under_another_kid_is_refused_though_our_key_signed_it(alice):
    """With one key, a token is verified with it before its header is read; the header must
    still name that key, as when the kid picks the key."""
    key = signing_keys()[0]
    claims = decode_token(issue_token(alice, "custom").token)
    relabelled = jwt.encode(claims, key.key, algorithm="HS256", headers={"kid": "sk-retired"})
    body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=relabelled).json()
    assert body["errorCode"] == "invalid_token"
    assert "key this site does not have" in body["message"]
    same = jwt.encode(claims, key.key, headers={"kid": key.kid})
    assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=same).status_code == 200


@pytest.mark.parametrize("garbage", ["not-a-token", "a.b.c", "Bearer"])
def test_garbage_tokens_are_401_not_500(garbage):
    response = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=garbage)
    assert response.status_code == 401
    assert response.json()["errorCode"] == "invalid_token"


def test_none_algorithm_is_refused(alice):
    token = jwt.encode({"sub": str(alice.pk)}, None, algorithm="none")
    body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()
    assert body["errorCode"] == "invalid_token"


def test_other_issuer_and_audience_are_refused(alice):
    token = issue_token(alice, "custom").token
    with override_settings(OFFLINE_SYNC={"AUTH": {"AUDIENCE": "another-site"}}):
        body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()
        assert (body["errorCode"], "audience" in body["message"]) == ("invalid_token", True)
    with override_settings(OFFLINE_SYNC={"AUTH": {"ISSUER": "another-issuer"}}):
        body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()
        assert (body["errorCode"], "issuer" in body["message"]) == ("invalid_token", True)


def test_deleted_and_inactive_users(alice):
    token = issue_token(alice, "custom").token
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()["errorCode"] == "inactive_user"
    User.objects.filter(pk=alice.pk).delete()
    assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()["errorCode"] == "unknown_user"


def test_password_change_revokes_tokens(alice):
    token = issue_token(alice, "custom").token
    alice.set_password("new-password-42")
    alice.save()
    body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()
    assert body["errorCode"] == "token_revoked"


def test_key_rotation_newest_signs_all_verify(alice):
    with override_settings(OFFLINE_SYNC={"AUTH": {"SIGNING_KEYS": [KEY_A]}}):
        old = issue_token(alice, "custom").token
        assert jwt.get_unverified_header(old)["kid"] == "2026-a"
    with override_settings(OFFLINE_SYNC={"AUTH": {"SIGNING_KEYS": [KEY_B, KEY_A]}}):
        new = issue_token(alice, "custom").token
        assert jwt.get_unverified_header(new)["kid"] == "2026-b"
        assert decode_token(old)["sub"] == decode_token(new)["sub"] == str(alice.pk)
        assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=old).status_code == 200
    with override_settings(OFFLINE_SYNC={"AUTH": {"SIGNING_KEYS": [KEY_B]}}):  # A retired
        body = _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=old).json()
        assert body["errorCode"] == "invalid_token" and "retired" in body["message"]


def test_secret_key_fallbacks_keep_tokens_valid(alice):
    """Without SIGNING_KEYS, Django's SECRET_KEY rotation rotates the token keys as well."""
    token = issue_token(alice, "custom").token
    rotated = {"SECRET_KEY": "a-brand-new-secret-key-for-tests-0123456789"}
    with override_settings(**rotated, SECRET_KEY_FALLBACKS=["tests-only-not-secret"]):
        assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).status_code == 200
        new_kid = jwt.get_unverified_header(issue_token(alice, "custom").token)["kid"]
        assert new_kid != jwt.get_unverified_header(token)["kid"]
    with override_settings(**rotated, SECRET_KEY_FALLBACKS=[]):
        assert _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token).json()["errorCode"] == "invalid_token"


def test_token_never_logged(alice, caplog):
    caplog.set_level(logging.DEBUG)
    token = issue_token(alice, "custom").token
    _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token)
    _rows(ZumoClient("v2"), HTTP_X_ZUMO_AUTH=token + "x")
    assert token not in caplog.text
