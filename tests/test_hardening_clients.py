"""Real clients, routing, the paging cursor and the example site, end to end over HTTP.

Each test replays what a real client sends (headers as the SDKs build them; docs/protocol.rst
§1.2, §11b) and checks the answer it needs.
"""

import base64
import json
from unittest import mock
from urllib.parse import parse_qsl

import pytest
from rest_framework.authtoken.models import Token

from django_offline_sync.models import SyncClock
from example_project.tasks.models import Inspection
from tests.conftest import ZumoClient
from tests.factories import InspectionFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

#: The v1 web SDK built without an application key (docs/protocol.rst §11b).
V1_WEB = "ZUMO/1.2 (lang=Web; os=--; os_version=--; arch=--; version=1.2.21003.0)"


# -- 1. X-ZUMO-VERSION names the generation when ZUMO-API-VERSION does not ---------------------


def test_a_v1_web_client_without_an_application_key_is_served_v1(client):
    TaskFactory()
    response = client.get("/tables/Task?__systemproperties=__version", HTTP_X_ZUMO_VERSION=V1_WEB)
    assert response.status_code == 200
    row = response.json()[0]
    assert "__version" in row and "version" not in row and "updatedAt" not in row  # v1 shape, not v3


def test_a_v1_client_without_an_application_key_gets_v1_shapes_on_every_verb(client):
    headers = {"HTTP_X_ZUMO_VERSION": V1_WEB}
    created = client.post("/tables/Task", {"id": "w1", "text": "a"}, content_type="application/json", **headers)
    assert created.status_code == 201 and set(created.json()) == {"id", "text", "complete", "priority", "dueDate"}
    missing = client.get("/tables/Task/nope", **headers)
    assert missing.status_code == 404 and missing.json()["code"] == 404  # the v1 error shape


@pytest.mark.parametrize(
    "header, value, shape",
    [
        ("HTTP_X_ZUMO_VERSION", "ZUMO/1.3 (lang=Managed; os=Windows; os_version=6.2; arch=X64; version=1.3.2)", "v1"),
        ("HTTP_USER_AGENT", "ZUMO/1.0 (lang=Java; os=Android; os_version=4.4; arch=armeabi; version=1.1.5)", "v1"),
        # The v1 iOS SDK 2.x (WindowsAzureMobileServices) sends ZUMO/2.x and no version header.
        ("HTTP_X_ZUMO_VERSION", "ZUMO/2.2 (lang=objective-c; os=iOS; os_version=8; arch=iPad; version=2.2.1)", "v1"),
        ("HTTP_X_ZUMO_VERSION", "ZUMO/2.0 (lang=Web; os=--; os_version=--; arch=--; version=2.0.1)", "v2"),
        ("HTTP_X_ZUMO_VERSION", "ZUMO/4.2 (lang=Managed; os=Android; os_version=10; arch=Arm64; version=4.2.0)", "v2"),
        ("HTTP_X_ZUMO_VERSION", "Datasync/9.0.0 (lang=Managed; os=Windows; arch=X64; version=9.0.0.0)", "v3"),
        ("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64)", "v3"),
    ],
)
def test_the_sdk_version_header_names_the_generation(client, header, value, shape):
    TaskFactory()
    body = client.get("/tables/Task", **{header: value}).json()
    if shape == "v3":
        assert set(body) == {"items", "count", "nextLink"}
    else:
        row = body[0]
        assert isinstance(body, list) and ("updatedAt" in row) == (shape == "v2")


@pytest.mark.parametrize(
    "headers, shape",
    [
        ({"HTTP_X_ZUMO_VERSION": f"ZUMO/{'9' * 5000}.0 (lang=Web)"}, "v2"),
        ({"HTTP_USER_AGENT": f"ZUMO/{'0' * 5000}1.0 (lang=Web)"}, "v1"),
        ({"HTTP_ZUMO_API_VERSION": "3.0.0", "HTTP_USER_AGENT": f"Datasync/{'9' * 5000}.0"}, "v3"),
    ],
)
def test_a_client_version_of_more_digits_than_int_reads_is_still_read(client, settings, headers, shape):
    # Python's int() refuses more than 4300 digits: one such user agent was a 500.
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(2)
    response = client.get("/tables/Task", **headers)
    assert response.status_code == 200, response.content[:200]
    body = response.json()
    if shape == "v3":
        assert body["nextLink"].startswith("__cursor=")  # a major past 8: the CTK's query form
    else:
        assert isinstance(body, list) and ("updatedAt" in body[0]) == (shape == "v2")


def test_an_explicit_api_version_beats_the_sdk_header(client):
    TaskFactory()
    body = client.get("/tables/Task", HTTP_X_ZUMO_VERSION=V1_WEB, HTTP_ZUMO_API_VERSION="3.0.0").json()
    assert "items" in body


def test_an_sdk_header_of_a_disabled_generation_is_refused(client, settings):
    settings.OFFLINE_SYNC = {"ENABLED_GENERATIONS": ["v2", "v3"]}
    response = client.get("/tables/Task", HTTP_X_ZUMO_VERSION=V1_WEB)
    assert response.status_code == 400 and "v1" in str(response.json())


# -- 2, 3. __systemproperties: '*' stands alone (v1); ignored for v2, a 400 for v3 --------------


@pytest.mark.parametrize("value", ["*,__updatedAt", "__version,*", "*,*"])
def test_v1_star_combined_with_names_is_400(v1, value):
    TaskFactory()
    response = v1.get("/tables/Task", {"__systemProperties": value})
    assert response.status_code == 400
    assert "stand alone" in response.json()["error"]


def test_v1_star_alone_and_name_lists_still_work(v1):
    TaskFactory()
    assert {"__createdAt", "__updatedAt", "__version", "__deleted"} <= set(
        v1.get("/tables/Task", {"__systemProperties": " * "}).json()[0]
    )
    row = v1.get("/tables/Task", {"__systemproperties": "__updatedAt,version,"}).json()[0]
    assert {"__updatedAt", "__version"} <= set(row) and "__deleted" not in row


def test_v2_ignores_system_properties_as_the_v2_servers_do(v2):
    TaskFactory()
    for value in ("*", "__createdAt,__updatedAt", "__colour"):
        response = v2.get("/tables/Task", {"__systemproperties": value})
        assert response.status_code == 200
        assert {"createdAt", "updatedAt", "version", "deleted"} <= set(response.json()[0])
    task = TaskFactory()
    response = v2.patch(f"/tables/Task/{task.id}?__systemproperties=*", {"text": "x"}, format="json")
    assert response.status_code == 200 and response.json()["text"] == "x"


def test_v3_still_refuses_system_properties(v3):
    response = v3.get("/tables/Task", {"__systemproperties": "*"})
    assert response.status_code == 400 and response.json()["errorCode"] == "mixed_generation"


# -- 4. v2 serves $top whole (up to MAX_TOP), as the Node server does ----------------------------


def test_a_v2_one_shot_read_with_take_100_gets_100_rows(v2):
    TaskFactory.create_batch(120)
    response = v2.get("/tables/Task?$top=100&$orderby=text")
    assert response.status_code == 200 and len(response.json()) == 100
    assert "Link" not in response  # the client asked for 100 and got them: nothing to follow


def test_v2_without_top_pages_at_page_size_with_a_link(v2, settings):
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 3}
    TaskFactory.create_batch(5)
    response = v2.get("/tables/Task")
    assert len(response.json()) == 3 and "rel=next" in response["Link"]
    assert len(v2.get("/tables/Task?$top=5").json()) == 5


def test_v2_top_above_max_top_is_400(v2, settings):
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 3, "MAX_TOP": 10}
    assert v2.get("/tables/Task?$top=10").status_code == 200
    response = v2.get("/tables/Task?$top=11")
    assert response.status_code == 400 and response.json()["option"] == "$top"


# -- 5. Table names route in any case; the registered name stays canonical ----------------------


def test_the_typescript_client_lower_cases_table_names(v3):
    TaskFactory.create_batch(2)
    assert len(v3.get("/tables/task").json()["items"]) == 2
    assert len(v3.get("/tables/TASK/").json()["items"]) == 2
    created = v3.post_json("/tables/task", {"id": "lc1", "text": "a"})
    assert created.status_code == 201
    assert created["Location"] == "http://testserver/tables/Task/lc1"
    assert v3.get("/tables/tAsK/lc1").json()["text"] == "a"
    assert v3.put_json("/tables/task/lc1", {"id": "lc1", "text": "b"}).status_code == 200
    assert v3.delete("/tables/task/lc1").status_code == 204


def test_a_v1_client_may_spell_the_table_in_any_case(v1):
    TaskFactory(id="v1lc")
    assert v1.get("/tables/TASK/v1lc").status_code == 200
    assert v1.patch_json("/tables/task/v1lc", {"text": "x"}).json()["text"] == "x"


def test_links_from_a_lower_cased_path_name_the_registered_table_and_can_be_followed(v2, v3, settings):
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 2, "V3_PAGE_SIZE": 2, "NEXT_LINK_FORMAT": "absolute"}
    TaskFactory.create_batch(5)
    body = v3.get("/tables/task?$orderby=updatedAt&$count=true").json()
    assert body["nextLink"].startswith("http://testserver/tables/Task?") and "__cursor=" in body["nextLink"]
    seen = [i["id"] for i in body["items"]]
    while body["nextLink"]:
        response = v3.get(body["nextLink"].removeprefix("http://testserver"))
        assert response.status_code == 200, response.json()
        body = response.json()
        seen += [i["id"] for i in body["items"]]
    assert len(seen) == len(set(seen)) == 5
    # A bare query string appended to the lower-cased path the client started from continues too.
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 2, "V3_PAGE_SIZE": 2, "NEXT_LINK_FORMAT": "query"}
    first = v3.get("/tables/task?$orderby=updatedAt").json()
    assert v3.get(f"/tables/task?{first['nextLink']}").status_code == 200
    link = v2.get("/tables/task?$orderby=updatedAt")["Link"]
    assert link.startswith("http://testserver/tables/Task?")


def test_reverse_gives_the_registered_spelling_and_unknown_tables_are_404(v3):
    from django.urls import reverse

    assert reverse("task-list") == "/tables/Task"
    assert reverse("task-detail", kwargs={"pk": "a.b"}) == "/tables/Task/a.b"
    assert v3.get("/tables/Tasks").status_code == 404
    assert v3.get("/tables/nope/x").status_code == 404


def test_two_tables_differing_only_in_case_are_refused():
    from django.core.exceptions import ImproperlyConfigured

    from django_offline_sync.routers import SyncRouter
    from example_project.tasks.views import NoteViewSet, TaskViewSet

    router = SyncRouter()
    router.register("Task", TaskViewSet, basename="task")
    with pytest.raises(ImproperlyConfigured, match="any case"):
        router.register("task", NoteViewSet, basename="lower-task")


# -- 6. The v3 nextLink in the form each client family follows -----------------------------------

TS_AGENT = "Datasync/5.0.0-alpha.1 core-rest-pipeline/1.10.0 Node/v18.16.0 OS/(x64-Linux-5.15.0)"
AMA_AGENT = "Datasync/6.0.0.0 (lang=Managed;os=Windows/10.0.22621;arch=X64;version=6.0.0.0)"
CTK_AGENT = "Datasync/9.0.0.0 (lang=Managed;os=Windows/10.0.22621;arch=X64;version=9.0.0.0)"


#: How each nextLink form starts, for ``GET /tables/Task?$orderby=updatedAt``.
FORMS = {"absolute": "http://testserver/tables/Task?", "path": "/tables/Task?", "query": "$orderby=updatedAt&__cursor="}


def next_link(client, **headers):
    body = client.get("/tables/Task?$orderby=updatedAt", **headers).json()
    assert body["nextLink"], body
    return body["nextLink"]


@pytest.mark.parametrize(
    "headers, form",
    [
        ({"HTTP_USER_AGENT": TS_AGENT, "HTTP_X_ZUMO_VERSION": TS_AGENT}, "absolute"),
        ({"HTTP_X_MS_USERAGENT": TS_AGENT}, "absolute"),  # the TypeScript client in a browser
        ({"HTTP_USER_AGENT": "MyApp/1.0 " + TS_AGENT}, "absolute"),  # with a userAgentPrefix
        ({"HTTP_USER_AGENT": AMA_AGENT, "HTTP_X_ZUMO_VERSION": AMA_AGENT}, "absolute"),
        ({"HTTP_USER_AGENT": CTK_AGENT}, "query"),
        ({"HTTP_USER_AGENT": "curl/8.5.0"}, "query"),
        ({}, "query"),
        ({"HTTP_USER_AGENT": AMA_AGENT, "HTTP_X_ZUMO_OPTIONS": "nextLink=path"}, "path"),
    ],
)
def test_each_client_family_gets_the_next_link_it_follows(v3, settings, headers, form):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(2)
    link = next_link(v3, **headers)
    assert link.startswith(FORMS[form]), link


def test_the_typescript_client_can_follow_its_next_link_to_the_end(v3, settings):
    """As RemoteTable.listItemsByPage does: ``new URL(nextLink)`` (absolute only), lower-case path."""
    from urllib.parse import urlsplit

    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
    TaskFactory.create_batch(5)
    url, seen = "/tables/task?$count=true", []
    while url:
        body = v3.get(url, HTTP_USER_AGENT=TS_AGENT).json()
        seen += [i["id"] for i in body["items"]]
        if not body["nextLink"]:
            break
        parts = urlsplit(body["nextLink"])
        assert parts.scheme == "http" and parts.netloc == "testserver"  # new URL() needs both
        url = f"{parts.path}?{parts.query}"
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize("style", ["query", "path", "absolute"])
def test_an_explicit_next_link_format_overrides_the_client_family(v3, settings, style):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1, "NEXT_LINK_FORMAT": style}
    TaskFactory.create_batch(2)
    for agent in (TS_AGENT, AMA_AGENT, CTK_AGENT):
        link = next_link(v3, HTTP_USER_AGENT=agent)
        assert link.startswith(FORMS[style]), (agent, link)


def test_next_link_format_auto_is_the_default_and_validated():
    from django_offline_sync.settings import DEFAULTS, validate

    assert DEFAULTS.NEXT_LINK_FORMAT == "auto"
    assert validate({"NEXT_LINK_FORMAT": "auto"})[1] == []
    assert [p.id for p in validate({"NEXT_LINK_FORMAT": "relative"})[1]] == ["offline_sync.E007"]


# -- 7. The paging cursor is bound to its caller and expires -------------------------------------


def client_for(user, generation="v3"):
    client = ZumoClient(generation)
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", **client._credentials)
    return client


def cursor_link(client, path="/tables/Inspection?$orderby=updatedAt&$count=true"):
    body = client.get(path).json()
    assert "__cursor=" in body["nextLink"], body
    return body


def test_the_caller_tag_follows_the_secret_key_and_the_salt(settings):
    """The tags are cached per caller: a new SECRET_KEY or CURSOR_SALT still makes new ones."""
    from django_offline_sync.cursor import _caller_tag

    first = _caller_tag("user:1")
    assert _caller_tag("user:1") == first and _caller_tag("user:2") != first
    settings.SECRET_KEY = "another secret key, long enough for the checks: 0123456789abcdef"
    rotated = _caller_tag("user:1")
    assert rotated != first
    settings.OFFLINE_SYNC = {"CURSOR_SALT": "another.salt"}
    assert _caller_tag("user:1") not in (first, rotated)


def test_another_user_cannot_replay_a_cursor_and_read_its_count(settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    InspectionFactory.create_batch(3, owner=alice)
    InspectionFactory(owner=bob)
    first = cursor_link(client_for(alice))
    assert first["count"] == 3
    response = client_for(bob).get(f"/tables/Inspection?{first['nextLink']}")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "invalid_cursor" and "another user" in body["title"] and "3" not in body["title"]
    assert client_for(alice).get(f"/tables/Inspection?{first['nextLink']}").json()["count"] == 3  # still hers


def test_an_anonymous_cursor_is_not_a_signed_in_users_and_back(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(3)
    anonymous = cursor_link(v3, "/tables/Task?$orderby=updatedAt")["nextLink"]
    signed_in = client_for(UserFactory())
    assert signed_in.get(f"/tables/Task?{anonymous}").json()["errorCode"] == "invalid_cursor"
    own = cursor_link(signed_in, "/tables/Task?$orderby=updatedAt")["nextLink"]
    assert v3.get(f"/tables/Task?{own}").status_code == 400
    assert v3.get(f"/tables/Task?{anonymous}").status_code == 200  # anonymous callers share one view


def test_a_cursor_expires_after_cursor_max_age(v3, settings):
    import time

    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1, "CURSOR_MAX_AGE": 60}
    TaskFactory.create_batch(3)
    # The link is signed in whole seconds somewhere between these two readings: 59 s after
    # the first is within its age however late in its second it was signed, 61 s after the
    # second is past it however slowly the request ran.
    before = time.time()
    link = cursor_link(v3, "/tables/Task?$orderby=updatedAt")["nextLink"]
    after = time.time()
    with mock.patch("django.core.signing.time.time", return_value=before + 59):
        assert v3.get(f"/tables/Task?{link}").status_code == 200
    with mock.patch("django.core.signing.time.time", return_value=after + 61):
        response = v3.get(f"/tables/Task?{link}")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "invalid_cursor"
    assert "expired" in body["title"] and "restart the pull" in body["title"]


def test_a_v2_link_header_cursor_expires_too(v2, settings):
    import time

    settings.OFFLINE_SYNC = {"PAGE_SIZE": 1, "CURSOR_MAX_AGE": 5}
    TaskFactory.create_batch(3)
    link = v2.get("/tables/Task?$orderby=updatedAt")["Link"].split(";")[0].removeprefix("http://testserver")
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 6):
        response = v2.get(link)
    assert response.status_code == 400 and "expired" in response.json()["message"]


def test_the_cursor_names_neither_the_user_nor_the_query(settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    user = UserFactory(username="carol")
    InspectionFactory.create_batch(2, owner=user, site="Hidden Site")
    link = cursor_link(client_for(user), "/tables/Inspection?$orderby=updatedAt&$filter=site eq 'Hidden Site'")
    token = dict(parse_qsl(link["nextLink"]))["__cursor"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(":")[0] + "=="))
    assert set(payload) <= {"u", "i", "q", "c", "r", "w"}
    # The watermark (the table's clock, which other users' writes move) is masked.
    assert payload["w"] != SyncClock.objects.get(table=Inspection._meta.db_table).last_ms
    text = json.dumps(payload)
    assert "carol" not in text and f"user:{user.pk}" not in text and "Hidden" not in text


@pytest.mark.parametrize("value", [0, -1, "86400", True])
def test_cursor_max_age_must_be_a_positive_integer(value):
    from django_offline_sync.settings import DEFAULTS, validate

    assert DEFAULTS.CURSOR_MAX_AGE == 86400
    assert [p.id for p in validate({"CURSOR_MAX_AGE": value})[1]] in (["offline_sync.E006"], ["offline_sync.E002"])


# -- 8. The example site is safe by default: DEBUG off, no shared SECRET_KEY ---------------------


def example_settings(monkeypatch, **env):
    import runpy
    from pathlib import Path

    import example_project

    for name in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return runpy.run_path(str(Path(example_project.__file__).parent / "settings.py"))


def test_the_example_site_runs_without_debug_unless_asked(monkeypatch, tmp_path):
    key_file = tmp_path / "key"
    assert example_settings(monkeypatch, DJANGO_SECRET_KEY_FILE=key_file)["DEBUG"] is False
    assert example_settings(monkeypatch, DJANGO_SECRET_KEY_FILE=key_file, DJANGO_DEBUG=1)["DEBUG"] is True


def test_the_example_site_generates_its_secret_key_once_and_keeps_it_private(monkeypatch, tmp_path):
    import stat

    key_file = tmp_path / ".secret_key"
    first = example_settings(monkeypatch, DJANGO_SECRET_KEY_FILE=key_file)["SECRET_KEY"]
    assert len(first) >= 50 and first != "example-only-change-me"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert example_settings(monkeypatch, DJANGO_SECRET_KEY_FILE=key_file)["SECRET_KEY"] == first  # kept
    other = example_settings(monkeypatch, DJANGO_SECRET_KEY_FILE=tmp_path / "elsewhere")["SECRET_KEY"]
    assert other != first  # each checkout gets its own
    explicit = example_settings(monkeypatch, DJANGO_SECRET_KEY="from-the-environment", DJANGO_SECRET_KEY_FILE=key_file)
    assert explicit["SECRET_KEY"] == "from-the-environment"


def test_the_key_file_is_ignored_by_git_and_the_demo_turns_debug_on():
    from pathlib import Path

    import example_project

    root = Path(example_project.__file__).parent.parent
    assert ".secret_key" in (root / ".gitignore").read_text().split()
    makefile = (root / "Makefile").read_text()
    assert "demo: export DJANGO_DEBUG = 1" in makefile


# -- 9. CORS on the example site: browser and Cordova clients on another origin -------------------

CLIENT_HEADERS = (
    "zumo-api-version", "x-zumo-auth", "x-zumo-application", "x-zumo-version", "x-zumo-installation-id",
    "x-zumo-features", "if-match", "if-none-match", "content-type", "authorization",
)


@pytest.fixture
def example_cors(monkeypatch, settings):
    """The example site's middleware and CORS settings on the test site."""
    example = example_settings(monkeypatch, DJANGO_SECRET_KEY="cors-test")
    settings.MIDDLEWARE = example["MIDDLEWARE"]
    for name, value in example.items():
        if name.startswith("CORS_"):
            setattr(settings, name, value)
    assert "corsheaders" in example["INSTALLED_APPS"]
    return example


@pytest.mark.parametrize("origin", ["http://localhost:8080", "https://localhost", "ionic://localhost"])
def test_a_preflight_from_another_origin_is_allowed_with_the_client_headers(client, example_cors, origin):
    response = client.options(
        "/tables/Task/abc",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=",".join(CLIENT_HEADERS),
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == origin
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert set(CLIENT_HEADERS) <= allowed
    methods = {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PATCH", "PUT", "DELETE"} <= methods
    assert response["Access-Control-Allow-Credentials"] == "true"


def test_a_cross_origin_read_exposes_etag_link_and_location(v2, example_cors, settings):
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 1}
    TaskFactory.create_batch(2)
    response = v2.get("/tables/Task", HTTP_ORIGIN="http://localhost:8080")
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == "http://localhost:8080"
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "link", "location"} <= exposed
    created = v2.post_json("/tables/Task", {"id": "cors1"}, HTTP_ORIGIN="http://localhost:8080")
    assert created.status_code == 201 and created["Access-Control-Allow-Origin"] == "http://localhost:8080"


def test_an_origin_not_allowed_gets_no_cors_headers(client, example_cors, monkeypatch, settings):
    response = client.options(
        "/tables/Task", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert "Access-Control-Allow-Origin" not in response
    example = example_settings(monkeypatch, DJANGO_SECRET_KEY="x", DJANGO_CORS_ALLOWED_ORIGINS="https://app.example")
    settings.CORS_ALLOWED_ORIGINS = example["CORS_ALLOWED_ORIGINS"]
    response = client.get("/tables/Task", HTTP_ORIGIN="https://app.example", HTTP_ZUMO_API_VERSION="3.0.0")
    assert response["Access-Control-Allow-Origin"] == "https://app.example"


# -- 10. The tables mounted at the site root as well as under /tables/ ---------------------------


def _root_and_tables_urls():
    from django.urls import include, path

    from django_offline_sync.routers import SyncRouter
    from example_project.tasks.views import TaskViewSet

    router = SyncRouter()
    router.register("Task", TaskViewSet, basename="task")
    return [path("tables/", include(router.urls)), path("", include((router.urls, "root")))]


#: This module is also the URLconf of the root-mount tests (README, "Tables at the site root too").
urlpatterns = _root_and_tables_urls()


@pytest.mark.urls(__name__)
def test_tables_mounted_at_the_root_and_under_tables_serve_the_same_rows(v2, v3, settings):
    from django.urls import reverse

    settings.OFFLINE_SYNC = {"PAGE_SIZE": 1, "V3_PAGE_SIZE": 1, "NEXT_LINK_FORMAT": "absolute"}
    TaskFactory.create_batch(2)
    assert reverse("task-list") == "/tables/Task" and reverse("root:task-list") == "/Task"
    assert v3.get("/Task").json()["items"] == v3.get("/tables/Task").json()["items"]
    link = v3.get("/task?$orderby=updatedAt").json()["nextLink"]
    assert link.startswith("http://testserver/Task?")  # the pull pages on the path it started on
    assert len(v3.get(link.removeprefix("http://testserver")).json()["items"]) == 1
    created = v2.post_json("/Task", {"id": "root1", "text": "a"})
    assert created.status_code == 201 and created["Location"] == "http://testserver/Task/root1"
    assert v2.get("/tables/Task/root1").json()["text"] == "a"
    assert v2.get("/Nope").status_code == 404
