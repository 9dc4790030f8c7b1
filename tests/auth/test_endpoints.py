"""The login endpoints: custom (username/password), token echo, /.auth/me, refresh, logout, throttling."""

from __future__ import annotations

import datetime as dt
import logging

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import override_settings

from django_offline_sync.auth.models import RevokedToken
from django_offline_sync.auth.tokens import decode_token, issue_token
from tests.conftest import ZumoClient

pytestmark = pytest.mark.django_db

PASSWORD = "wonderland-42"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD, email="alice@example.org")


def _login(client, username="alice", password=PASSWORD, path="/.auth/login/custom"):
    return client.post_json(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/.auth/login/custom", "/login/custom"])
def test_custom_login_answers_what_the_clients_read(alice, path):
    response = _login(ZumoClient("v2"), path=path)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"authenticationToken", "user"}
    assert body["user"] == {"userId": str(alice.pk)}
    claims = decode_token(body["authenticationToken"])
    assert (claims["sub"], claims["idp"]) == (str(alice.pk), "custom")
    assert claims["exp"] - claims["iat"] == 86_400


def test_custom_login_token_reads_the_table(alice):
    token = _login(ZumoClient("v2")).json()["authenticationToken"]
    assert ZumoClient("v2").get("/tables/Inspection", HTTP_X_ZUMO_AUTH=token).status_code == 200


@pytest.mark.parametrize(("generation", "message_key"), [("v1", "error"), ("v2", "message"), ("v3", "title")])
def test_wrong_password_is_401_in_the_generation_shape(alice, generation, message_key):
    response = _login(ZumoClient(generation), password="wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["errorCode"] == "invalid_credentials"
    assert "username or password" in body[message_key]


def test_inactive_user_cannot_sign_in(alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert _login(ZumoClient("v2")).json()["errorCode"] == "invalid_credentials"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"username": "alice"}, "invalid_sign_in_request"),
        ({"username": 1, "password": PASSWORD}, "invalid_sign_in_request"),
        (["alice", PASSWORD], "body_not_object"),
    ],
)
def test_bad_login_bodies_are_400(alice, body, code):
    response = ZumoClient("v2").post_json("/.auth/login/custom", body)
    assert response.status_code == 400
    assert response.json()["errorCode"] == code


def _post_raw(path, text, client=None):
    # Raw JSON text: \ud800 and \u0000 escapes, which json.loads turns into a lone surrogate
    # and a NUL, and which a test client encoding a dict cannot send.
    return (client or ZumoClient("v3")).post(path, text.encode(), content_type="application/json")


@pytest.mark.parametrize(
    ("text", "member"),
    [
        (r'{"username": "\ud800", "password": "x"}', "username"),
        (r'{"username": "alice\udfff", "password": "x"}', "username"),
        (r'{"username": "alice\u0000", "password": "x"}', "username"),
        (r'{"username": "alice", "password": "wonder\ud800"}', "password"),
    ],
)
def test_sign_in_text_no_account_can_hold_is_400(alice, text, member):
    # Was a 500: the username throttle and the password hasher could not encode a lone
    # surrogate, and PostgreSQL cannot compare a NUL.
    response = _post_raw("/.auth/login/custom", text)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "invalid_sign_in_request"
    assert body["title"].startswith(f"{member} must")
    assert "wonder" not in body["title"]  # never echoed: it may be a password
    assert "authenticationToken" not in body
    assert not RevokedToken.objects.exists() and User.objects.get().username == "alice"


def test_a_password_may_hold_a_nul(alice):
    alice.set_password("wonder\x00land")
    alice.save()
    assert _post_raw("/.auth/login/custom", r'{"username": "alice", "password": "wonder\u0000land"}').status_code == 200
    response = _post_raw("/.auth/login/custom", r'{"username": "alice", "password": "wonder\u0000"}')
    assert (response.status_code, response.json()["errorCode"]) == (401, "invalid_credentials")


def test_a_lone_surrogate_username_still_counts_for_the_throttle(alice):
    text = r'{"username": "\ud800", "password": "x"}'
    with override_settings(OFFLINE_SYNC={"AUTH": {"LOGIN_RATE": "2/min"}}):
        statuses = [_post_raw("/.auth/login/custom", text, ZumoClient("v3", REMOTE_ADDR=f"10.0.1.{i}")).status_code
                    for i in range(3)]  # fmt: skip
    assert statuses == [400, 400, 429]


def test_a_deeply_nested_login_body_is_400_not_500():
    # The username throttle parsed the body with json.loads before the view: RecursionError.
    response = _post_raw("/.auth/login/custom", "[" * 50_000)
    assert (response.status_code, response.json()["errorCode"]) == (400, "malformed_body")


@pytest.mark.parametrize(
    ("path", "text", "member"),
    [
        ("/.auth/login", r'{"authenticationToken": "a.b.\ud800"}', "authenticationToken"),
        ("/.auth/login", r'{"authenticationToken": "a.b.c\u0000"}', "authenticationToken"),
        ("/.auth/login/corp", r'{"id_token": "a.b.\ud800"}', "id_token"),
        ("/.auth/login/corp", r'{"access_token": "opaque-\u00e9"}', "access_token"),
        ("/.auth/login/corp", r'{"authorization_code": "c\u0000"}', "authorization_code"),
        ("/.auth/login/corp", r'{"authorization_code": "c", "code_verifier": "v\ud800"}', "code_verifier"),
    ],
)
def test_a_token_or_code_that_is_not_printable_ascii_is_400(path, text, member):
    # Refused before the provider is asked (no discovery here: it would be a 502): a lone
    # surrogate failed in PyJWT's encode, non-ASCII in httpx's header encoding, both a 500.
    provider = {"corp": {"issuer": "https://login.invalid", "client_id": "sync"}}
    with override_settings(OFFLINE_SYNC={"AUTH": {"PROVIDERS": provider}}):
        response = _post_raw(path, text)
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["errorCode"], body["title"]) == (
        "invalid_sign_in_request",
        f"{member} must be printable ASCII, as every token and code is.",
    )


def test_malformed_json_is_400():
    response = ZumoClient("v2").post("/.auth/login/custom", b"{nope", content_type="application/json")
    assert (response.status_code, response.json()["errorCode"]) == (400, "malformed_body")


def test_custom_login_can_be_turned_off(alice):
    with override_settings(OFFLINE_SYNC={"AUTH": {"CUSTOM_LOGIN": False}}):
        response = _login(ZumoClient("v2"))
    assert (response.status_code, response.json()["errorCode"]) == (404, "unknown_provider")


def test_unknown_provider_is_404():
    response = ZumoClient("v2").post_json("/.auth/login/facebook", {"access_token": "x"})
    assert (response.status_code, response.json()["errorCode"]) == (404, "unknown_provider")


def test_brute_force_is_throttled_per_address_and_per_username(alice):
    client = ZumoClient("v2")
    with override_settings(OFFLINE_SYNC={"AUTH": {"LOGIN_RATE": "3/min"}}):
        statuses = [_login(client, password=f"guess-{i}").status_code for i in range(4)]
        assert statuses == [401, 401, 401, 429]
        response = _login(client)  # even the right password waits
        assert response.status_code == 429
        assert response.json()["errorCode"] == "throttled"
        assert int(response["Retry-After"]) > 0
        # From other addresses, the same username is throttled too.
        cache.delete("offline_sync_login:addr:127.0.0.1")
        other = ZumoClient("v2", REMOTE_ADDR="10.0.0.9")
        assert _login(other, password="guess").status_code == 429
        # Another username from a fresh address is not.
        User.objects.create_user("bob", password=PASSWORD)
        assert _login(ZumoClient("v2", REMOTE_ADDR="10.0.0.10"), username="bob").status_code == 200


def test_token_login_echoes_a_valid_token(alice):
    token = issue_token(alice, "custom").token
    response = ZumoClient("v2").post_json("/.auth/login", {"authenticationToken": token})
    assert response.json() == {"authenticationToken": token, "user": {"userId": str(alice.pk)}}
    expired = issue_token(alice, "custom", now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).token
    response = ZumoClient("v2").post_json("/.auth/login", {"authenticationToken": expired})
    assert (response.status_code, response.json()["errorCode"]) == (401, "token_expired")


def test_me_lists_the_identity(alice):
    token = issue_token(alice, "custom").token
    response = ZumoClient("v2").get("/.auth/me", HTTP_X_ZUMO_AUTH=token)
    assert response.status_code == 200
    [me] = response.json()
    assert me["provider_name"] == "custom"
    assert me["user_id"] == str(alice.pk)
    assert {"typ": "email", "val": "alice@example.org"} in me["user_claims"]
    assert me["expires_on"].endswith("Z")
    response = ZumoClient("v2").get("/.auth/me")
    assert (response.status_code, response.json()["errorCode"]) == (401, "invalid_token")


def test_refresh_renews_a_recently_expired_token_but_not_an_old_one(alice):
    now = dt.datetime.now(dt.UTC)
    recent = issue_token(alice, "custom", now=now - dt.timedelta(days=2)).token  # expired a day ago
    response = ZumoClient("v2").get("/.auth/refresh", HTTP_X_ZUMO_AUTH=recent)
    assert response.status_code == 200
    fresh = response.json()["authenticationToken"]
    assert decode_token(fresh)["exp"] > now.timestamp() + 86_000
    assert response.json()["user"] == {"userId": str(alice.pk)}
    old = issue_token(alice, "custom", now=now - dt.timedelta(days=5)).token
    response = ZumoClient("v2").get("/.auth/refresh", HTTP_X_ZUMO_AUTH=old)
    assert (response.status_code, response.json()["errorCode"]) == (401, "token_expired")


def test_logout_revokes_only_that_token(alice):
    first, second = issue_token(alice, "custom").token, issue_token(alice, "custom").token
    assert ZumoClient("v2").post("/.auth/logout", HTTP_X_ZUMO_AUTH=first).status_code == 204
    body = ZumoClient("v2").get("/tables/Inspection", HTTP_X_ZUMO_AUTH=first).json()
    assert body["errorCode"] == "token_revoked"
    assert ZumoClient("v2").get("/tables/Inspection", HTTP_X_ZUMO_AUTH=second).status_code == 200
    assert ZumoClient("v2").get("/.auth/refresh", HTTP_X_ZUMO_AUTH=first).json()["errorCode"] == "token_revoked"
    assert RevokedToken.objects.count() == 1


def test_logout_forgets_revocations_past_the_refresh_grace(alice):
    RevokedToken.objects.create(jti="old", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    ZumoClient("v2").post("/.auth/logout", HTTP_X_ZUMO_AUTH=issue_token(alice, "custom").token)
    assert list(RevokedToken.objects.values_list("jti", flat=True)) != ["old"]
    assert not RevokedToken.objects.filter(jti="old").exists()


def test_done_page_is_html_without_caching():
    response = ZumoClient("v2").get("/.auth/login/done")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"


def test_no_token_or_password_in_logs(alice, caplog):
    caplog.set_level(logging.DEBUG)
    client = ZumoClient("v2")
    token = _login(client).json()["authenticationToken"]
    _login(client, password="wrong-password-xyz")
    client.get("/.auth/me", HTTP_X_ZUMO_AUTH=token)
    client.get("/.auth/refresh", HTTP_X_ZUMO_AUTH=token)
    client.get("/tables/Inspection", HTTP_X_ZUMO_AUTH=token + "tampered")
    client.post("/.auth/logout", HTTP_X_ZUMO_AUTH=token)
    client.get("/tables/Inspection", HTTP_X_ZUMO_AUTH=token)
    for secret in (token, PASSWORD, "wrong-password-xyz", token.split(".")[2]):
        assert secret not in caplog.text
    assert "Unauthorized" in caplog.text  # the 401s were logged, just not their credentials


def test_kid_header_names_the_signing_key(alice):
    with override_settings(OFFLINE_SYNC={"AUTH": {"SIGNING_KEYS": [{"kid": "k1", "key": "k" * 40}]}}):
        token = _login(ZumoClient("v2")).json()["authenticationToken"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k1", "typ": "JWT"}


def test_provider_identities_in_the_admin(admin_client, alice):
    from django_offline_sync.auth.models import ProviderIdentity

    ProviderIdentity.objects.create(user=alice, provider="corp", issuer="https://id.example", subject="s-1")
    response = admin_client.get("/admin/offline_sync_auth/provideridentity/?q=alice")
    assert response.status_code == 200
    assert b"s-1" in response.content


def test_a_failing_login_leaves_the_password_out_of_the_error_report(alice, caplog, settings):
    """A 500 inside the login (a broken backend) is reported with its traceback, but not the password."""
    from django.test import Client
    from django.views.debug import ExceptionReporter

    settings.AUTHENTICATION_BACKENDS = ["tests.auth.failing_backend.BrokenBackend"]
    secret = "never-in-a-report-42"
    response = Client(raise_request_exception=False).post(
        "/.auth/login/custom", {"username": "alice", "password": secret}, content_type="application/json"
    )
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    report = ExceptionReporter(record.request, *record.exc_info).get_traceback_html()  # with each frame's locals
    assert "the directory is down" in report and "CustomLoginView" in report
    assert secret not in report


def test_a_forged_x_forwarded_for_does_not_reset_the_address_throttle(alice):
    # Without NUM_PROXIES, DRF's get_ident takes the whole X-Forwarded-For header, which the
    # client writes: a new header on every attempt was a new address, and one address could
    # try any number of accounts.
    with override_settings(OFFLINE_SYNC={"AUTH": {"LOGIN_RATE": "3/min"}}):
        statuses = [
            _login(ZumoClient("v2", HTTP_X_FORWARDED_FOR=f"10.9.0.{i}"), username=f"user-{i}").status_code
            for i in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


def test_behind_a_proxy_the_address_throttle_counts_the_forwarded_address(alice, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    def attempt(address, username):
        return _login(ZumoClient("v2", HTTP_X_FORWARDED_FOR=address), username=username).status_code

    with override_settings(OFFLINE_SYNC={"AUTH": {"LOGIN_RATE": "2/min"}}):
        first = [attempt("10.9.1.1", f"u{i}") for i in range(3)]
        other = attempt("10.9.1.2", "v")
    assert (first, other) == ([401, 401, 429], 401)


def test_spellings_of_one_account_share_its_username_throttle(alice):
    # The throttle keyed a username by its own text, casefolded, while the database decides
    # which account it names: MariaDB's default collations match "alice " and "alíce" to
    # "alice", so each spelling was a fresh limit on one account.
    spellings = ["alice", "ALICE", "alice ", "alice  ", "al\u00edce", "alic\u00e9 "]
    named = [name for name in spellings if User._default_manager.filter(username=name).exists()]
    with override_settings(OFFLINE_SYNC={"AUTH": {"LOGIN_RATE": "3/min"}}):
        statuses = [
            _login(ZumoClient("v2", REMOTE_ADDR=f"10.0.2.{i}"), username=name, password="guess").status_code
            for i, name in enumerate(named + ["alice"] * 3)
        ]
    assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}, (named, statuses)
