"""The real v2 JavaScript client (azure-mobile-apps-client 2.0.1, from Node) signing in.

``tests/js/login_driver.js`` calls ``client.login("oidc", {id_token})`` with a token the loopback
OpenID Connect provider issued, then reads and writes the per-user Inspection table as that
user, signs out (locally), and signs in again with ``client.login(authenticationToken)``.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from django.contrib.auth.models import User

from django_offline_sync.auth.models import ProviderIdentity
from example_project.tasks.models import Inspection
from tests.test_js_client import JS_DIR, node  # noqa: F401  (the fixture installing the client)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_js_client_signs_in_and_reads_only_its_rows(node, live_server, oidc_site):  # noqa: F811
    other = User.objects.create_user("inspector-two")
    Inspection.objects.create(owner=other, site="someone else's", pipe_id="9")
    id_token = oidc_site.tokens("ada", "analytical-engine")["id_token"]
    result = subprocess.run(
        [node, str(JS_DIR / "login_driver.js"), live_server.url, "oidc", id_token],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"driver printed no report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    steps = {s["name"]: s for s in report["steps"]}
    assert result.returncode == 0, json.dumps(report["steps"], indent=1)

    user = ProviderIdentity.objects.get(provider="oidc").user
    assert steps["login"]["result"] == {"userId": str(user.pk), "hasToken": True}
    # (the client sends login requests past its service filters, so they are not in report["http"])

    # Only the signed-in user's rows, before and after its own insert (stamped with its owner).
    assert steps["read"]["result"] == []
    assert [r["site"] for r in steps["read_after_insert"]["result"]] == ["from-js"]
    assert Inspection.objects.get(site="from-js").owner == user
    # Every table request carried the site token in X-ZUMO-AUTH, until the local logout.
    table_requests = [h for h in report["http"] if "/tables/" in h["url"]]
    signed = [h["requestHeaders"].get("X-ZUMO-AUTH") for h in table_requests]
    assert signed[:3] == [signed[0]] * 3 and signed[0].count(".") == 2
    assert signed[3] is None
    assert steps["read_signed_out"]["error"]["status"] == 401
    assert steps["read_signed_out"]["error"]["body"]["errorCode"] == "not_authenticated"
    # login(token): the client posts the kept token to /.auth/login and carries on with it.
    assert steps["login_with_token"]["result"] == {"userId": str(user.pk)}
    assert [r["site"] for r in steps["read_again"]["result"]] == ["from-js"]
