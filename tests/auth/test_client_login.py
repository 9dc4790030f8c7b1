"""The Python client signing in against a live server: ``offline-sync login``, the token kept in
the store and sent, and a 401 in the middle of a sync that stops it without losing the queue."""

from __future__ import annotations

import io
import os
import stat
import time

import pytest
from django.contrib.auth.models import User

from django_offline_sync.client import AuthenticationRequired, LocalStore, SyncClient
from django_offline_sync.client.cli import EXIT_AUTH, EXIT_OK, EXIT_USAGE, main
from example_project.tasks.models import Inspection

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "inspect-all-the-pipes"


def cli(live_server, db, generation, *args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    argv = ["--url", live_server.url, "--db", str(db), "--generation", generation, "--no-progress", *args]
    code = main(argv, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(params=["v2", "v3"])
def generation(request):
    return request.param


@pytest.fixture
def inspector():
    user = User.objects.create_user("inspector", password=PASSWORD)
    Inspection.objects.create(owner=user, site="North", pipe_id="N-1")
    Inspection.objects.create(owner=User.objects.create_user("other"), site="South", pipe_id="S-1")
    return user


def test_cli_login_pull_and_a_401_mid_push_keeps_the_queue(live_server, tmp_path, generation, inspector):
    db = tmp_path / "device.db"
    code, out, err = cli(live_server, db, generation, "login", "--username", "inspector", stdin=PASSWORD + "\n")
    assert (code, err) == (EXIT_OK, "")
    assert f"signed in as user {inspector.pk}" in out
    assert PASSWORD not in out
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600

    # Signed in: the per-user table pulls only this user's rows.
    code, out, err = cli(live_server, db, generation, "pull", "Inspection")
    assert code == EXIT_OK, err
    with LocalStore(db) as store:
        assert [row["site"] for row in store.query("Inspection")] == ["North"]
        saved = store.credentials()
        assert saved is not None and saved.user_id == str(inspector.pk)
        store.insert("Inspection", {"id": "i-1", "site": "East", "pipeId": "E-1"})
        store.insert("Inspection", {"id": "i-2", "site": "West", "pipeId": "W-1"})

    # The password changes on the server: the token is revoked; the push stops with exit 9.
    inspector.set_password("a-new-password-42")
    inspector.save()
    code, out, err = cli(live_server, db, generation, "push")
    assert code == EXIT_AUTH
    assert "token_revoked" in err and "offline-sync login" in err and err.count("\n") == 1
    with LocalStore(db) as store:
        assert [op.item_id for op in store.operations()] == ["i-1", "i-2"]  # nothing lost
    assert not Inspection.objects.filter(site__in=["East", "West"]).exists()

    # A wrong password is exit 9 too; the right one, then the push goes through.
    code, _, err = cli(live_server, db, generation, "login", "--username", "inspector", stdin="nope\n")
    assert code == EXIT_AUTH and "invalid_credentials" in err
    code, _, err = cli(live_server, db, generation, "login", "--username", "inspector", stdin="a-new-password-42\n")
    assert code == EXIT_OK, err
    code, out, err = cli(live_server, db, generation, "push")
    assert code == EXIT_OK, err
    assert set(Inspection.objects.filter(owner=inspector).values_list("site", flat=True)) == {"North", "East", "West"}

    # Logout: the server revokes the token and the store forgets it; the table is refused again.
    code, out, _ = cli(live_server, db, generation, "logout")
    assert code == EXIT_OK and "signed out" in out
    with LocalStore(db) as store:
        assert store.credentials() is None
    code, _, err = cli(live_server, db, generation, "pull", "Inspection")
    assert code == EXIT_AUTH and "not_authenticated" in err


def test_headers_the_client_sends(live_server, tmp_path, inspector):
    seen = {}
    for generation in ("v2", "v3"):
        with SyncClient(live_server.url, tmp_path / f"{generation}.db", generation=generation) as client:
            client.login(username="inspector", password=PASSWORD)
            headers = client.http._client.headers
            seen[generation] = ("X-ZUMO-AUTH" in headers, headers.get("Authorization", "").startswith("Bearer "))
            assert client.user_id == str(inspector.pk)
    assert seen == {"v2": (True, False), "v3": (False, True)}


def test_expired_token_mid_pull(live_server, tmp_path, inspector, settings):
    settings.OFFLINE_SYNC = {"AUTH": {"TOKEN_LIFETIME": 1, "LEEWAY": 0}}
    with SyncClient(live_server.url, tmp_path / "d.db", generation="v3") as client:
        client.login(username="inspector", password=PASSWORD)
        client.table("Inspection").insert({"id": "late", "site": "Late", "pipeId": "L-1"})
        time.sleep(2.1)
        with pytest.raises(AuthenticationRequired) as info:
            client.pull("Inspection")
        assert info.value.code == "token_expired"
        assert [op.item_id for op in client.pending()] == ["late"]


def test_login_with_a_provider_token(live_server, tmp_path, oidc_site):
    id_token = oidc_site.tokens("ada", "analytical-engine")["id_token"]
    code, out, err = cli(live_server, tmp_path / "d.db", "v3", "login", "oidc", stdin=id_token + "\n")
    assert code == EXIT_OK, err
    assert "(oidc)" in out and id_token not in out
    code, _, err = cli(live_server, tmp_path / "d.db", "v3", "pull", "Inspection")
    assert code == EXIT_OK, err


def test_login_needs_a_username(live_server, tmp_path):
    code, _, err = cli(live_server, tmp_path / "d.db", "v3", "login")
    assert code == EXIT_USAGE and "--username" in err
