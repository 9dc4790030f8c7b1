"""Client-directed login with tokens a real OpenID Connect provider issued (loopback, own keys)."""

from __future__ import annotations

import base64
import hashlib
import logging
import time

import httpx
import jwt
import pytest
from django.contrib.auth.models import User

from django_offline_sync.auth.models import ProviderIdentity
from django_offline_sync.auth.tokens import decode_token
from example_project.tasks.models import Inspection
from tests.auth.provider.fixtures import OTHER_CLIENT, SHORT_CLIENT, SITE_CLIENT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _login(live_server, body, provider="oidc", prefix="/.auth/login", version="2.0.0"):
    return httpx.post(
        f"{live_server.url}{prefix}/{provider}", json=body, headers={"ZUMO-API-VERSION": version}, timeout=20
    )


def test_id_token_signs_in_and_creates_the_user(live_server, oidc_site):
    tokens = oidc_site.tokens("ada", "analytical-engine")
    response = _login(live_server, {"id_token": tokens["id_token"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"authenticationToken", "user"}
    identity = ProviderIdentity.objects.get()
    provider_sub = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
    assert (identity.issuer, identity.subject, identity.provider) == (oidc_site.issuer, provider_sub, "oidc")
    user = identity.user
    assert body["user"] == {"userId": str(user.pk)}
    assert (user.email, user.first_name, user.has_usable_password()) == ("ada@example.org", "Ada", False)
    assert decode_token(body["authenticationToken"])["idp"] == "oidc"

    # The site token reads the per-user table; the second sign-in finds the same user.
    Inspection.objects.create(owner=user, site="Ada's", pipe_id="1")
    Inspection.objects.create(owner=User.objects.create_user("someone"), site="not Ada's", pipe_id="2")
    rows = httpx.get(
        f"{live_server.url}/tables/Inspection",
        headers={"ZUMO-API-VERSION": "2.0.0", "X-ZUMO-AUTH": body["authenticationToken"]},
    ).json()
    assert [row["site"] for row in rows] == ["Ada's"]
    again = _login(live_server, {"id_token": oidc_site.tokens("ada", "analytical-engine")["id_token"]})
    assert again.json()["user"] == body["user"]
    assert ProviderIdentity.objects.count() == 1
    assert ProviderIdentity.objects.get().last_login is not None


def test_opaque_access_token_is_checked_at_userinfo(live_server, oidc_site):
    tokens = oidc_site.tokens("grace", "compiler-1952")
    assert tokens["access_token"].count(".") != 2  # django-oauth-toolkit's are opaque
    response = _login(live_server, {"access_token": tokens["access_token"]}, prefix="/login", version="")
    assert response.status_code == 200, response.text
    assert User.objects.get(pk=response.json()["user"]["userId"]).email == "grace@example.org"
    forged = _login(live_server, {"access_token": "not-an-access-token"})
    assert (forged.status_code, forged.json()["errorCode"]) == (401, "provider_token_rejected")


def test_authorization_code_is_exchanged_by_the_site(live_server, oidc_site):
    code = oidc_site.sign_in("ada", "analytical-engine", SITE_CLIENT, f"{live_server.url}/.auth/login/oidc/callback")
    response = _login(live_server, {"authorization_code": code})
    assert response.status_code == 200, response.text
    replay = _login(live_server, {"authorization_code": code})
    assert (replay.status_code, replay.json()["errorCode"]) == (401, "provider_token_rejected")


def test_authorization_code_with_pkce(live_server, oidc_site):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    callback = f"{live_server.url}/.auth/login/oidc/callback"
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = oidc_site.sign_in("ada", "analytical-engine", SITE_CLIENT, callback, **pkce)
    without = _login(live_server, {"authorization_code": code})
    assert (without.status_code, without.json()["errorCode"]) == (401, "provider_token_rejected")
    code = oidc_site.sign_in("ada", "analytical-engine", SITE_CLIENT, callback, **pkce)
    response = _login(live_server, {"authorization_code": code, "code_verifier": verifier})
    assert response.status_code == 200, response.text


def test_token_for_another_audience_is_refused(live_server, oidc_site):
    tokens = oidc_site.tokens("ada", "analytical-engine", OTHER_CLIENT)
    response = _login(live_server, {"id_token": tokens["id_token"]})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "provider_token_rejected"
    assert "audience" in response.json()["message"]
    assert not ProviderIdentity.objects.exists()


def test_token_from_another_issuer_is_refused(live_server, oidc_site, rogue_provider):
    """Same signing key, other issuer: the issuer check alone refuses it."""
    tokens = rogue_provider.tokens("ada", "analytical-engine")
    response = _login(live_server, {"id_token": tokens["id_token"]})
    assert response.status_code == 401
    body = response.json()
    assert body["errorCode"] == "provider_token_rejected"
    assert "not issued by 'oidc'" in body["message"]


def test_expired_provider_token_is_refused(live_server, oidc_site, settings):
    auth = settings.OFFLINE_SYNC["AUTH"]
    auth["PROVIDERS"]["oidc"]["audiences"] = [SHORT_CLIENT["client_id"]]
    settings.OFFLINE_SYNC = {"AUTH": auth}
    tokens = oidc_site.tokens("ada", "analytical-engine", SHORT_CLIENT)
    time.sleep(2.1)
    response = _login(live_server, {"id_token": tokens["id_token"]}, version="3.0.0")
    assert response.status_code == 401
    body = response.json()
    assert (body["errorCode"], body["status"]) == ("provider_token_rejected", 401)
    assert "expired" in body["title"]


def test_site_token_expiry_on_a_live_server(live_server, oidc_site, settings):
    settings.OFFLINE_SYNC = dict(settings.OFFLINE_SYNC, AUTH=dict(settings.OFFLINE_SYNC["AUTH"], TOKEN_LIFETIME=4))
    token = _login(live_server, {"id_token": oidc_site.tokens("ada", "analytical-engine")["id_token"]}).json()[
        "authenticationToken"
    ]
    headers = {"ZUMO-API-VERSION": "2.0.0", "X-ZUMO-AUTH": token}
    assert httpx.get(f"{live_server.url}/tables/Inspection", headers=headers).status_code == 200
    time.sleep(max(0.0, decode_token(token)["exp"] - time.time()) + 1.1)  # until just past exp
    response = httpx.get(f"{live_server.url}/tables/Inspection", headers=headers)
    assert (response.status_code, response.json()["errorCode"]) == (401, "token_expired")
    refreshed = httpx.get(f"{live_server.url}/.auth/refresh", headers=headers)
    assert refreshed.status_code == 200


def test_unknown_identity_is_refused_when_the_site_does_not_create_users(live_server, oidc_site, settings):
    auth = settings.OFFLINE_SYNC["AUTH"]
    auth["PROVIDERS"]["oidc"]["create_users"] = False
    settings.OFFLINE_SYNC = {"AUTH": auth}
    response = _login(live_server, {"id_token": oidc_site.tokens("ada", "analytical-engine")["id_token"]})
    assert (response.status_code, response.json()["errorCode"]) == (403, "sign_in_refused")
    assert not User.objects.filter(username__startswith="oidc:").exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"id_token": ""}, {"id_token": 5}, {"id_token": "a", "access_token": "b"}, {"token": "x"}],
)
def test_bad_provider_login_bodies_are_400(live_server, oidc_site, body):
    response = _login(live_server, body)
    assert (response.status_code, response.json()["errorCode"]) == (400, "invalid_sign_in_request")


def test_garbage_id_token_is_401(live_server, oidc_site):
    for garbage in ("a.b.c", "nonsense", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."):
        response = _login(live_server, {"id_token": garbage})
        assert (response.status_code, response.json()["errorCode"]) == (401, "provider_token_rejected")


def test_provider_tokens_and_site_tokens_never_logged(live_server, oidc_site, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = oidc_site.tokens("ada", "analytical-engine")
    caplog.clear()
    body = _login(live_server, {"id_token": tokens["id_token"]}).json()
    _login(live_server, {"access_token": tokens["access_token"]})
    httpx.get(f"{live_server.url}/.auth/me", headers={"X-ZUMO-AUTH": body["authenticationToken"]})
    assert caplog.records  # the exchanges were logged (httpx, the server)…
    for secret in (tokens["id_token"], tokens["access_token"], body["authenticationToken"]):
        assert secret not in caplog.text  # …without a credential
