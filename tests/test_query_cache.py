"""The list-statement cache (``query.shapes``): answers byte-identical to the uncached path,
one caller's rows never served to another, and a bounded size.

Every query of the matrix runs three ways for each generation: with ``QUERY_CACHE_SIZE`` 0
(every statement compiled afresh, the path before the cache), with a cold cache and with a
warm one, where the warm one was filled by a request of the same shape with other values.
Status, headers and body must be the same bytes (a paging cursor is compared by its signed
payload: the signature carries the second it was made).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote, unquote

import pytest
from django.core import signing
from django.db.models import QuerySet
from django.test import override_settings
from rest_framework.authtoken.models import Token

from django_offline_sync.query.shapes import SqlTemplate, filter_shape, shape_cache
from django_offline_sync.settings import get_settings, validate
from example_project.tasks.models import Task
from tests.conftest import ZumoClient
from tests.factories import InspectionFactory, NoteFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

GENERATIONS = ["v1", "v2", "v3"]
T0 = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
_CURSOR = re.compile(r"(__cursor=)([^&\"\s>;]+)")


def _stamp(i: int) -> str:
    return (T0 + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def tasks():
    rows = []
    for i in range(12):
        rows.append(
            TaskFactory(text=f"task {i:02d}" if i % 3 else f"Other {i}", priority=i % 4, complete=i % 2 == 0,
                        deleted=i in (4, 9))
        )
    # Spread the stamps so that time filters select part of the table.
    for i, task in enumerate(rows):
        QuerySet(Task).filter(pk=task.pk).update(updated_at=T0 + dt.timedelta(minutes=i))  # no stamping
    return rows


# Pairs of one shape with different values: the first warms the cache for the second.
SHAPES: list[tuple[str, str]] = [
    # the pulls of the JS (v2), Datasync v3 and .NET v1 clients
    (f"$filter=(updatedAt ge datetimeoffset'{_stamp(2)}')&$orderby=updatedAt&$top=5&__includeDeleted=true",
     f"$filter=(updatedAt ge datetimeoffset'{_stamp(5)}')&$orderby=updatedAt&$top=5&__includeDeleted=true"),
    (f"$filter=(updatedAt gt cast({_stamp(1)},Edm.DateTimeOffset))&$orderby=updatedAt&$count=true"
     "&__includedeleted=true&$top=4",
     f"$filter=(updatedAt gt cast({_stamp(6)},Edm.DateTimeOffset))&$orderby=updatedAt&$count=true"
     "&__includedeleted=true&$top=4"),
    (f"$filter=(__updatedAt ge datetimeoffset'{_stamp(3)}')&$orderby=__updatedAt&$skip=0&$top=3"
     "&__includeDeleted=true",
     f"$filter=(__updatedAt ge datetimeoffset'{_stamp(0)}')&$orderby=__updatedAt&$skip=0&$top=3"
     "&__includeDeleted=true"),
    (f"$filter=(updatedAt ge datetimeoffset'{_stamp(3)}')&$orderby=updatedAt&$skip=1&$top=3"
     "&__includeDeleted=true&$inlinecount=allpages",
     f"$filter=(updatedAt ge datetimeoffset'{_stamp(7)}')&$orderby=updatedAt&$skip=1&$top=3"
     "&__includeDeleted=true&$inlinecount=allpages"),
    # plain filters
    ("$filter=text eq 'task 01'", "$filter=text eq 'task 05'"),
    ("$filter=priority gt 1 and complete eq true", "$filter=priority gt 2 and complete eq false"),
    ("$filter=priority le 2.5", "$filter=priority le 1.5"),
    ("$filter=startswith(text, 'task') and priority ne 3", "$filter=startswith(text, 'Oth') and priority ne 0"),
    ("$filter=substring(text, 1, 3) eq 'ask'", "$filter=substring(text, 2, 3) eq 'sk '"),
    ("$filter=priority in (1, 2)", "$filter=priority in (0, 3, 2)"),
    ("$filter=(priority add 1) gt 2", "$filter=(priority add 2) gt 4"),
    ("$filter=text eq null", "$filter=text ne null"),
    ("$filter=not (text eq 'task 01') or priority eq 0", "$filter=not (text eq 'task 02') or priority eq 1"),
    ("$filter=tolower(text) eq 'other 0'&$select=id,text", "$filter=tolower(text) eq 'other 3'&$select=id,text"),
    ("$filter=updatedAt lt datetime'2024-03-01T12:05:00'", "$filter=updatedAt lt datetime'2024-03-01T12:09:00'"),
    ("$filter=year(updatedAt) eq 2024&$orderby=priority desc,text", "$filter=year(updatedAt) eq 2023"),
    ("$orderby=text&$top=4", "$orderby=text&$top=4&$skip=4"),
    ("$top=3", "$top=3&__includeDeleted=true"),
    ("", "$count=true"),
    # errors: every body as before
    ("$filter=text eq 1", "$filter=text eq 2"),
    ("$filter=priority eq 'x'", "$filter=priority eq 'y'"),
    ("$filter=text eq", "$filter=priority gt"),
    ("$filter=nosuch eq 1", "$filter=nosuch eq 2"),
    ("$filter=priority gt 1&$top=-1", "$filter=priority gt 2&$top=x"),
    ("$filter=priority gt 99999999999999999999", "$filter=priority gt 1&$orderby=nosuch"),
    ("$filter=updatedAt ge datetimeoffset'2024-13-01T00:00:00Z'", "$filter=updatedAt ge datetimeoffset'bad'"),
    ("$filter=text eq 'a'&__cursor=garbage", "$filter=text eq 'b'&__cursor=garbage"),
]


# The pairs whose two queries have one shape (the others differ in a value kept in the shape).
_SAME_SHAPE = {first for first, _ in SHAPES[:7]} | {SHAPES[12][0], SHAPES[13][0], SHAPES[14][0]}


def _normalized(response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body, each paging cursor replaced by its signed payload."""

    def payload(match: re.Match[str]) -> str:
        token = unquote(match.group(2))
        try:
            loaded = signing.loads(token, salt=get_settings().CURSOR_SALT)
        except signing.BadSignature:
            return match.group(0)
        return match.group(1) + quote(repr(sorted(loaded.items())))

    headers = sorted((k, _CURSOR.sub(payload, v)) for k, v in response.items())
    body = _CURSOR.sub(payload, response.content.decode()).encode()
    return response.status_code, headers, body


def _follow(client, query: str, pages: int = 3) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    """The answers to ``query`` and up to ``pages - 1`` next pages (by nextLink or Link)."""
    url = "/tables/Task" + (f"?{query}" if query else "")
    answers = []
    for _ in range(pages):
        response = client.get(url)
        answers.append(_normalized(response))
        next_url = None
        if response.status_code == 200:
            body = response.json()
            if isinstance(body, dict) and body.get("nextLink"):
                next_url = body["nextLink"]
            elif response.get("Link"):
                next_url = response["Link"].split(";")[0].strip("<>")
        if not next_url:
            break
        path_and_query = re.sub(r"^https?://[^/]+", "", next_url)
        if not path_and_query.startswith("/"):  # a bare query string (v3's default nextLink)
            path_and_query = "/tables/Task?" + path_and_query.lstrip("?")
        url = path_and_query
    return answers


def _with_size(size: int):
    return override_settings(OFFLINE_SYNC={"QUERY_CACHE_SIZE": size})


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize(("first", "second"), SHAPES)
def test_cached_answers_are_byte_identical(tasks, generation, first, second):
    client = ZumoClient(generation)
    with _with_size(0):
        expected = [_follow(client, q) for q in (first, second)]
        assert len(shape_cache) == 0
    with _with_size(64):
        cold = _follow(client, first)
        hits = shape_cache.hits
        warm = _follow(client, second)  # same shape, other values: from the cache
        hit = shape_cache.hits > hits and all(isinstance(e, SqlTemplate) for e in shape_cache._entries.values())
        again = [_follow(client, q) for q in (first, second)]
    assert cold == expected[0]
    assert warm == expected[1]
    assert again == expected
    if first in _SAME_SHAPE and expected[1][0][0] == 200:
        assert hit  # the second request of the shape was served from the cache


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize(
    "query",
    [
        f"$filter=(updatedAt ge datetimeoffset'{_stamp(0)}')&$orderby=updatedAt&$top=3&__includeDeleted=true",
        "$filter=priority ge 0&$top=3&__includeDeleted=true&$count=true&$inlinecount=allpages",  # id order
    ],
)
def test_a_pull_of_several_pages_hits_the_cache(tasks, generation, query):
    """Next links (v2/v3), or the ``$skip`` pages a v1 .NET client asks for."""
    client = ZumoClient(generation)

    def pull() -> list[tuple[int, list[tuple[str, str]], bytes]]:
        if generation != "v1":
            return _follow(client, query.replace("&$top=3", ""), pages=6)
        return [answer for skip in range(0, 15, 3) for answer in _follow(client, f"{query}&$skip={skip}", pages=1)]

    def sized(size: int):
        return override_settings(OFFLINE_SYNC={"QUERY_CACHE_SIZE": size, "PAGE_SIZE": 3, "V3_PAGE_SIZE": 3})

    with sized(0):
        expected = pull()
    with sized(64):
        first = pull()
        hits = shape_cache.hits
        second = pull()
        assert shape_cache.hits >= hits + len(second)
    assert first == expected == second
    assert len(expected) > 2


def _client_for(user, generation):
    client = ZumoClient(generation)
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", **client._credentials)
    return client


@pytest.mark.parametrize("generation", GENERATIONS)
def test_per_user_view_never_serves_another_users_rows(generation):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for i in range(3):
        InspectionFactory(owner=alice, id=f"alice-{i}", site="Alice Site")
        InspectionFactory(owner=bob, id=f"bob-{i}", site="Bob Site")
    queries = [
        "$filter=(updatedAt ge datetimeoffset'2000-01-01T00:00:00.000Z')&$orderby=updatedAt&$top=50"
        "&__includeDeleted=true",
        "$filter=site ne 'nowhere'&$count=true&$inlinecount=allpages",
        "",
    ]
    with _with_size(64):
        for query in queries:
            for user, other in ((alice, "bob"), (bob, "alice"), (alice, "bob")):  # the cache warm by now
                response = _client_for(user, generation).get(f"/tables/Inspection?{query}")
                assert response.status_code == 200
                text = response.content.decode()
                assert other not in text and user.username in text
        # InspectionViewSet.query_cache_key: one statement per user, never shared.
        keys = {key[0][1] for key in shape_cache._entries}
        assert {alice.pk, bob.pk} <= keys


def test_overridden_get_queryset_without_a_key_is_not_cached(settings):
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = "tests.test_query_cache_urls"
    clear_url_caches()
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    InspectionFactory(owner=alice, id="alice-0")
    InspectionFactory(owner=bob, id="bob-0")
    with _with_size(64):
        for user in (alice, bob, alice):
            rows = _client_for(user, "v2").get("/tables/Inspection?$filter=site ne 'x'").json()
            assert [r["id"] for r in rows] == [f"{user.username}-0"]
        assert len(shape_cache) == 0


def test_a_managers_own_data_view_is_not_cached(tasks, monkeypatch):
    """A project's ``all_objects`` manager could scope rows by request state: not automatic."""
    from django_offline_sync.managers import AllObjectsManager

    class Scoping(AllObjectsManager):
        def get_queryset(self):
            return super().get_queryset().filter(priority__lt=2)

    monkeypatch.setattr(Task, "all_objects", Scoping())
    Task.all_objects.model = Task
    with _with_size(64):
        rows = ZumoClient("v2").get("/tables/Task?$filter=priority ge 0").json()
        assert rows and all(r["priority"] < 2 for r in rows)
        assert len(shape_cache) == 0


def test_other_filter_backends_are_not_cached():
    """NoteViewSet adds django-filter (``?task=``), whose parameters no shape holds."""
    one, two = TaskFactory(), TaskFactory()
    NoteFactory(task=one, id="n1")
    NoteFactory(task=two, id="n2")
    with _with_size(64):
        for task, note in ((one, "n1"), (two, "n2"), (one, "n1")):
            rows = ZumoClient("v2").get(f"/tables/Note?task={task.pk}&$filter=body ne 'x'").json()
            assert [r["id"] for r in rows] == [note]
        assert len(shape_cache) == 0


def test_the_cache_is_bounded(tasks):
    client = ZumoClient("v2")
    with _with_size(3):
        for i in range(10):
            assert client.get(f"/tables/Task?$filter=priority gt {i}&$orderby=text&$top={i + 1}").status_code == 200
            assert len(shape_cache) <= 3
        assert len(shape_cache) == 3


def test_size_zero_turns_it_off(tasks):
    with _with_size(0):
        for i in range(3):
            assert ZumoClient("v2").get(f"/tables/Task?$filter=priority gt {i}").status_code == 200
        assert len(shape_cache) == 0


def test_the_size_setting_is_validated():
    _, problems = validate({"QUERY_CACHE_SIZE": -1})
    assert [p.id for p in problems] == ["offline_sync.E006"]
    _, problems = validate({"QUERY_CACHE_SIZE": 0})
    assert problems == []


def test_a_shape_keeps_every_value_that_is_not_bound_per_request():
    from django_offline_sync.query import parse_filter

    def shape(text: str, bound: bool) -> object:
        node = parse_filter(text)
        literals = [n for n in _walk(node) if type(n).__name__ == "Literal"]
        return filter_shape(node, {id(n): "int" for n in literals} if bound else {})

    assert shape("priority gt 1", True) == shape("priority gt 2", True)
    assert shape("priority gt 1", False) != shape("priority gt 2", False)
    assert shape("priority gt 1", True) != shape("priority ge 1", True)
    assert shape("priority gt 1", True) != shape("text gt 1", True)


def _walk(node):
    from django_offline_sync.query.nodes import walk

    return list(walk(node))


def test_a_value_bound_outside_a_slot_is_never_templated():
    """A slot whose value reached the SQL some other way would stay as a constant: refused."""
    from django_offline_sync.query.shapes import NOT_TEMPLATABLE, SlotValue, compile_template

    plain = Task.all_objects.filter(text="x").values_list("pk")[:5]
    assert compile_template(plain, "default", 1) is NOT_TEMPLATABLE
    assert isinstance(compile_template(plain, "default", 0), SqlTemplate)
    slotted = Task.all_objects.filter(text=SlotValue("x", Task._meta.get_field("text"), 0)).values_list("pk")[:5]
    template = compile_template(slotted, "default", 1)
    assert isinstance(template, SqlTemplate)
    assert [slot.index for slot, _ in template.params if slot is not None] == [0]
