"""Real OpenID Connect providers on loopback for the sign-in tests (fixtures, via ``tests/conftest.py``).

Each is django-oauth-toolkit with OIDC on (``tests/auth/provider``), run as a process of its own
with its own SQLite database and an RSA key generated here. ``provider`` is the site's
configured provider; ``rogue_provider`` signs with the same key under another issuer, so that
the issuer check itself (not a key mismatch) is what refuses its tokens.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[3]
SITE_CLIENT = {"client_id": "offline-sync-site", "client_secret": "site-secret-for-tests", "name": "site"}
OTHER_CLIENT = {"client_id": "another-app", "client_secret": "another-secret-for-tests", "name": "another"}
SHORT_CLIENT = {"client_id": "short-lived-app", "client_secret": "short-secret-for-tests", "name": "short-lived"}
NATIVE_REDIRECT = "http://127.0.0.1/native-app/callback"
USERS = [
    {"username": "ada", "password": "analytical-engine", "email": "ada@example.org", "first_name": "Ada"},
    {"username": "grace", "password": "compiler-1952", "email": "grace@example.org", "first_name": "Grace"},
]


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen

    def sign_in(
        self, username: str, password: str, client: dict, redirect_uri: str = NATIVE_REDIRECT, **extra: str
    ) -> str:
        """The user signs in at the provider and approves ``client``: the authorization code."""
        with httpx.Client(timeout=10) as http:
            login = f"{self.issuer.removesuffix('/o')}/accounts/login/"
            page = http.get(login)
            csrf = http.cookies["csrftoken"]
            response = http.post(
                login,
                data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
                headers={"Referer": login},
            )
            assert response.status_code == 302, f"provider sign-in failed: {response.status_code} {page.status_code}"
            query = {
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": redirect_uri,
                "scope": "openid profile email",
                "state": secrets.token_urlsafe(8),
                **extra,
            }
            response = http.get(f"{self.issuer}/authorize/?{urlencode(query)}")
            assert response.status_code == 302, response.text[:500]
            location = urlparse(response.headers["Location"])
            return parse_qs(location.query)["code"][0]

    def tokens(self, username: str, password: str, client: dict = SITE_CLIENT) -> dict:
        """What a native app holds after the provider's own SDK signed the user in."""
        code = self.sign_in(username, password, client)
        response = httpx.post(
            f"{self.issuer}/token/",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": NATIVE_REDIRECT},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()


def _start(tmp: Path, name: str, key_file: Path, redirect_uris: list[str]) -> Provider:
    config = tmp / f"{name}.json"
    clients = [dict(c, redirect_uris=redirect_uris) for c in (SITE_CLIENT, OTHER_CLIENT, SHORT_CLIENT)]
    config.write_text(
        json.dumps(
            {"database": str(tmp / f"{name}.sqlite3"), "key_file": str(key_file), "users": USERS, "clients": clients}
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.auth.provider.serve", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail(f"the test OIDC provider did not start:\n{process.stderr.read()}")
    return Provider(json.loads(line)["issuer"], process)


@pytest.fixture(scope="session")
def _provider_key(tmp_path_factory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("oidc-key") / "key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _stop(provider: Provider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        provider.process.kill()
        provider.process.wait()


@pytest.fixture(scope="session")
def provider(live_server, tmp_path_factory, _provider_key):
    started = _start(
        tmp_path_factory.mktemp("oidc-provider"),
        "provider",
        _provider_key,
        [NATIVE_REDIRECT, f"{live_server.url}/.auth/login/oidc/callback"],
    )
    yield started
    _stop(started)


@pytest.fixture(scope="session")
def rogue_provider(tmp_path_factory, _provider_key):
    started = _start(tmp_path_factory.mktemp("oidc-rogue"), "rogue", _provider_key, [NATIVE_REDIRECT])
    yield started
    _stop(started)


@pytest.fixture
def oidc_site(settings, provider):
    """The site under test with the provider configured as ``oidc``, users created on first sign-in."""
    settings.OFFLINE_SYNC = {
        "AUTH": {
            "LEEWAY": 0,
            "PROVIDERS": {
                "oidc": {
                    "issuer": provider.issuer,
                    "client_id": SITE_CLIENT["client_id"],
                    "client_secret": SITE_CLIENT["client_secret"],
                    "create_users": True,
                }
            },
        }
    }
    return provider
