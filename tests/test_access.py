"""Access control: the per-user data view of the example Inspection table never leaks.

User B must not read, list, filter on, count, update, delete, undelete or provoke a
409/412 body that reveals user A's rows (the Datasync create-conflict leak, CTK #407).
"""

import pytest
from rest_framework.authtoken.models import Token

from example_project.tasks.models import Inspection
from tests.conftest import ZumoClient
from tests.factories import InspectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user, generation="v2"):
    client = ZumoClient(generation)
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", **client._credentials)
    return client


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def bob():
    return UserFactory(username="bob")


@pytest.fixture
def secret(alice):
    return InspectionFactory(owner=alice, id="a-secret", site="Secret Site", remarks="alice only")


def test_anonymous_is_refused(secret):
    assert ZumoClient("v2").get("/tables/Inspection").status_code in (401, 403)


def test_owner_sees_own_rows(alice, secret):
    rows = client_for(alice).get("/tables/Inspection").json()
    assert [r["id"] for r in rows] == ["a-secret"]


def test_insert_stamps_the_owner(alice):
    response = client_for(alice).post_json("/tables/Inspection", {"id": "new", "site": "Mill Rd", "pipeId": "P-1"})
    assert response.status_code == 201
    assert Inspection.objects.get(pk="new").owner == alice
    assert "owner" not in response.json() and "ownerId" not in response.json()


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_other_user_cannot_see_list_filter_or_count(bob, secret, generation):
    client = client_for(bob, generation)
    body = client.get("/tables/Inspection?$filter=site eq 'Secret Site'&$inlinecount=allpages&$count=true").json()
    text = str(body)
    assert "Secret" not in text and "a-secret" not in text
    if generation == "v3":
        assert body["count"] == 0 and body["items"] == []
    elif generation == "v2":
        assert body == {"results": [], "count": 0}


def test_other_user_cannot_read_by_id(bob, secret):
    response = client_for(bob).get("/tables/Inspection/a-secret")
    assert response.status_code == 404 and "Secret" not in response.content.decode()


def test_other_user_cannot_update_or_provoke_412(bob, secret):
    client = client_for(bob)
    for if_match in (None, '"AAAAAAAAAAE="'):
        extra = {"HTTP_IF_MATCH": if_match} if if_match else {}
        response = client.patch_json("/tables/Inspection/a-secret", {"remarks": "bob was here"}, **extra)
        assert response.status_code == 404 and "alice" not in response.content.decode()
        response = client.put_json("/tables/Inspection/a-secret", {"site": "x", "pipeId": "y"}, **extra)
        assert response.status_code == 404
    secret.refresh_from_db()
    assert secret.remarks == "alice only"


def test_other_user_cannot_delete_or_undelete(bob, alice, secret):
    client = client_for(bob)
    assert client.delete("/tables/Inspection/a-secret").status_code == 404
    assert not Inspection.all_objects.get(pk="a-secret").deleted
    client_for(alice).delete("/tables/Inspection/a-secret")
    assert client.post("/tables/Inspection/a-secret").status_code == 404
    assert Inspection.all_objects.get(pk="a-secret").deleted


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_insert_with_another_users_id_reveals_nothing(bob, secret, generation):
    response = client_for(bob, generation).post_json(
        "/tables/Inspection", {"id": "a-secret", "site": "x", "pipeId": "y"}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "Secret" not in text and "alice" not in text
    assert Inspection.all_objects.get(pk="a-secret").site == "Secret Site"


def test_tombstones_of_other_users_are_not_pulled(bob, alice, secret):
    client_for(alice).delete("/tables/Inspection/a-secret")
    rows = client_for(bob).get("/tables/Inspection?__includeDeleted=true").json()
    assert rows == []
