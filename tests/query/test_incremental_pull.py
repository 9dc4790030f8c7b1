"""The exact incremental-pull queries each client sends (docs/protocol.rst §4) parse and page correctly.

Rows share ``updatedAt`` values across page boundaries on purpose: with ``id`` as the final
sort key, every client's own paging loop must see every row exactly once.
"""

import datetime as dt
from urllib.parse import quote

import pytest
from django.http import QueryDict
from django.test import override_settings

from django_offline_sync.generations import policy_for
from django_offline_sync.query import FieldMap, parse_query
from tests.models import Item

from .conftest import set_updated_at

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
FIELDS = FieldMap.for_model(Item)


@pytest.fixture
def timeline(db):
    """23 rows over 6 distinct milliseconds (ties of up to 7), two of them soft-deleted."""
    Item.objects.bulk_create([Item(id=f"r{i:02d}", name=f"n{i}", flag=i % 3 == 0) for i in range(23)])
    stamps = {}
    for i in range(23):
        stamps[f"r{i:02d}"] = T0 + dt.timedelta(milliseconds=[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3,
                                                              3, 4, 5, 5, 5][i])
        set_updated_at(f"r{i:02d}", stamps[f"r{i:02d}"], deleted=i in (4, 20))
    return stamps


def run(string, generation):
    q = parse_query(QueryDict(string), FIELDS)
    qs = Item.all_objects.all() if q.include_deleted else Item.objects.all()
    if q.filter is not None:
        qs = qs.filter(q.filter)
    take = policy_for(generation).page_size(q.top)
    return list(qs.order_by(*q.order_by)[q.skip:q.skip + take])


def ms(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def dotnet_o(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0+00:00"


def test_netcli_first_request_from_the_epoch(timeline):
    string = ("$filter=" + quote("(updatedAt ge datetimeoffset'1970-01-01T00:00:00.0000000+00:00')")
              + "&$orderby=updatedAt&$skip=0&$top=50&__includeDeleted=true")
    rows = run(string, "v2")
    assert len(rows) == 23
    assert [(r.updated_at, r.id) for r in rows] == sorted((r.updated_at, r.id) for r in rows)


def test_v1_spelling_with_system_properties(timeline):
    string = ("$filter=" + quote("(__updatedAt ge datetimeoffset'1970-01-01T00:00:00.0000000+00:00')")
              + "&$orderby=__updatedAt&$skip=0&$top=50&__includeDeleted=true"
              + "&__systemproperties=__createdAt,__updatedAt,__version,__deleted")
    assert len(run(string, "v1")) == 23


def test_user_filter_anded_in_front_and_without_deleted(timeline):
    token = T0 + dt.timedelta(milliseconds=1)
    string = "$filter=" + quote(f"((flag eq true) and (updatedAt ge datetimeoffset'{dotnet_o(token)}'))") + \
        "&$orderby=updatedAt&$skip=0&$top=50"
    rows = run(string, "v2")
    assert {r.id for r in rows} == {f"r{i:02d}" for i in range(23) if i % 3 == 0 and i >= 3 and i != 4}


def netcli_pull(page_size):
    """MSSDK/NETCLI: ge token, reset skip when the max updatedAt advanced, else skip += rows."""
    token = dt.datetime(1970, 1, 1, tzinfo=UTC)
    skip, seen = 0, []
    for _ in range(100):
        string = ("$filter=" + quote(f"(updatedAt ge datetimeoffset'{dotnet_o(token)}')")
                  + f"&$orderby=updatedAt&$skip={skip}&$top={page_size}&__includeDeleted=true")
        rows = run(string, "v2")
        if not rows:
            return seen
        seen.extend(r.id for r in rows)
        newest = max(r.updated_at for r in rows)
        if newest > token:
            token, skip = newest, 0
        else:
            skip += len(rows)
    raise AssertionError("pull did not finish")


def test_netcli_loop_sees_every_row_despite_ties_across_pages(timeline):
    seen = netcli_pull(page_size=3)
    assert set(seen) == set(timeline)


def js_pull(page_size, generation="v2"):
    """JSCLI/Android/iOS: ge token; skip += n while the last row's updatedAt equals the token."""
    token, skip, seen = None, 0, []
    for _ in range(100):
        literal = f"datetimeoffset'{ms(token)}'" if token else "datetimeoffset'1970-01-01T00:00:00.000Z'"
        string = ("$filter=" + quote(f"(updatedAt ge {literal})") + "&$orderby=" + quote("updatedAt asc")
                  + f"&$top={page_size}&$skip={skip}&__includeDeleted=true")
        rows = run(string, generation)
        if not rows:
            return seen
        seen.extend(r.id for r in rows)
        last = rows[-1].updated_at
        if last == token:
            skip += len(rows)
        else:
            token, skip = last, 0
    raise AssertionError("pull did not finish")


def test_js_android_ios_loop_sees_every_row(timeline):
    assert set(js_pull(page_size=4)) == set(timeline)


def test_jscli_half_rewritten_datetime_literals_are_both_accepted(timeline):
    # JSCLI only rewrites the first datetime' to datetimeoffset'.
    string = "$filter=" + quote(
        f"(updatedAt ge datetimeoffset'{ms(T0)}') and (updatedAt lt datetime'{ms(T0 + dt.timedelta(milliseconds=1))}')"
    ) + "&$orderby=updatedAt&__includeDeleted=true"
    assert [r.id for r in run(string, "v2")] == ["r00", "r01", "r02"]


def ctk_pull(token_ms=None):
    """CTK v3: gt cast(token) (omitted at the epoch), $count=true, pages by $skip with the filter fixed."""
    string = "$orderby=updatedAt&$count=true&__includedeleted=true"
    if token_ms is not None:
        token = dt.datetime.fromtimestamp(token_ms / 1000, tz=UTC)
        string = "$filter=" + quote(f"(updatedAt gt cast({ms(token)},Edm.DateTimeOffset))") + "&" + string
    q = parse_query(QueryDict(string), FIELDS)
    assert q.count and q.include_deleted and q.top is None
    assert [(t.expression.name, t.descending) for t in q.order_terms] == [("updatedAt", False)]
    seen, skip = [], 0
    while True:
        rows = run(string + f"&$skip={skip}", "v3")
        if not rows:
            return seen
        seen.extend(rows)
        skip += len(rows)



@override_settings(OFFLINE_SYNC={"V3_PAGE_SIZE": 4})
def test_ctk_first_pull_without_filter_then_incremental(timeline):
    first = ctk_pull()
    assert [r.id for r in first] == sorted(timeline, key=lambda k: (timeline[k], k))
    token_ms = int(first[-8].updated_at.timestamp() * 1000)
    later = ctk_pull(token_ms)
    assert {r.id for r in later} == {k for k, v in timeline.items() if v > first[-8].updated_at}


def test_ctk_strict_gt_excludes_the_token_millisecond(timeline):
    token = T0 + dt.timedelta(milliseconds=3)
    string = "$filter=" + quote(f"(updatedAt gt cast({ms(token)},Edm.DateTimeOffset))") + \
        "&$orderby=updatedAt&$count=true&__includedeleted=true"
    assert [r.id for r in run(string, "v3")] == ["r19", "r20", "r21", "r22"]


def test_ama_first_pull_sends_no_filter_and_no_include_deleted(timeline):
    rows = run("$orderby=updatedAt&$count=true", "v3")
    assert "r04" not in {r.id for r in rows} and len(rows) == 21


def test_sub_millisecond_token_digits_compare_at_the_millisecond(timeline):
    # NETCLI sends 7 fraction digits; a token read from the .mmmZ wire form matches its own rows.
    token = f"{ms(T0 + dt.timedelta(milliseconds=5))[:-1]}9999+00:00"
    string = "$filter=" + quote(f"(updatedAt ge datetimeoffset'{token}')")
    assert [r.id for r in run(string + "&$orderby=updatedAt", "v2")] == ["r21", "r22"]


def test_android_orderby_asc_and_ios_literal_forms(timeline):
    for literal in (f"datetimeoffset'{ms(T0)}'", f"datetime'{ms(T0)}'"):
        rows = run("$filter=" + quote(f"(updatedAt ge {literal})") + "&$orderby=" + quote("updatedAt asc")
                   + "&$top=50&__includeDeleted=true", "v2")
        assert len(rows) == 23
