"""Server-directed sign-in in a real browser, as a client's login window runs it.

The browser opens ``/.auth/login/oidc?session_mode=token`` on the site; the site sends it to the
loopback OpenID Connect provider (django-oauth-toolkit, its own process and keys), the person
signs in on the provider's own form, the provider sends the browser back with a code, and the
site ends at ``/.auth/login/done#token=<url-encoded JSON>``: the URL every client watches for.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from django_offline_sync.auth.models import ProviderIdentity
from example_project.tasks.models import Inspection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def other_origins(oidc_site) -> list[str]:
    return [urlsplit(oidc_site.issuer).netloc]


def _sign_in_at_provider(page, username: str, password: str) -> None:
    page.wait_for_selector("#id_username")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")


def _fragment(url: str, key: str) -> str:
    fragment = urlsplit(url).fragment
    assert fragment.startswith(f"{key}="), url
    return unquote(fragment[len(key) + 1 :])


def test_server_directed_login_ends_at_done_with_a_token(page, live_server, oidc_site, external_requests, caplog):
    caplog.set_level(logging.DEBUG)
    page.goto("/.auth/login/oidc?session_mode=token")
    assert page.url.startswith(oidc_site.issuer.removesuffix("/o"))  # the provider's own sign-in page
    _sign_in_at_provider(page, "grace", "compiler-1952")
    page.wait_for_url("**/.auth/login/done#token=*")
    assert page.url.startswith(f"{live_server.url}/.auth/login/done#token=")
    assert "close this window" in page.content()

    result = json.loads(_fragment(page.url, "token"))
    assert set(result) == {"authenticationToken", "user"}
    identity = ProviderIdentity.objects.get()
    assert result["user"] == {"userId": str(identity.user.pk)}
    assert identity.user.email == "grace@example.org"

    # The token reads the user's own rows, and the flow cookie is gone.
    Inspection.objects.create(owner=identity.user, site="Grace's", pipe_id="1")
    rows = httpx.get(
        f"{live_server.url}/tables/Inspection",
        headers={"ZUMO-API-VERSION": "2.0.0", "X-ZUMO-AUTH": result["authenticationToken"]},
    ).json()
    assert [row["site"] for row in rows] == ["Grace's"]
    assert not [c for c in page.context.cookies() if c["name"] == "offline_sync_login"]
    assert external_requests == []
    assert result["authenticationToken"] not in caplog.text


def test_v1_client_ends_at_login_done(page, live_server, oidc_site):
    page.goto("/login/oidc?session_mode=token")
    _sign_in_at_provider(page, "ada", "analytical-engine")
    page.wait_for_url("**/login/done#token=*")
    assert urlsplit(page.url).path == "/login/done"
    assert json.loads(_fragment(page.url, "token"))["authenticationToken"].count(".") == 2


def test_failures_end_at_done_with_an_error(page, live_server, oidc_site, settings):
    # A callback the site did not start (no flow cookie): refused, said so.
    page.goto("/.auth/login/oidc/callback?code=forged&state=forged")
    assert "not started here" in _fragment(page.url, "error")
    # A provider the site does not have.
    page.goto("/.auth/login/nosuch?session_mode=token")
    assert "No sign-in provider" in _fragment(page.url, "error")
    # An identity the site may not create an account for.
    auth = settings.OFFLINE_SYNC["AUTH"]
    auth["PROVIDERS"]["oidc"]["create_users"] = False
    settings.OFFLINE_SYNC = {"AUTH": auth}
    page.goto("/.auth/login/oidc?session_mode=token")
    _sign_in_at_provider(page, "ada", "analytical-engine")
    page.wait_for_url("**/.auth/login/done#error=*")
    assert "no account on this site" in _fragment(page.url, "error")
    assert not ProviderIdentity.objects.exists()


def test_tampered_state_is_refused(page, live_server, oidc_site):
    """A callback carrying another flow's state (login CSRF) while this browser's flow is open."""
    page.goto("/.auth/login/oidc?session_mode=token")
    page.wait_for_selector("#id_username")  # at the provider, flow cookie set
    assert [c["name"] for c in page.context.cookies() if c["name"] == "offline_sync_login"]
    page.goto("/.auth/login/oidc/callback?code=stolen&state=someone-elses")
    assert "state does not match" in _fragment(page.url, "error")
