"""Property: for random filter trees over random rows, the ORM returns what the evaluator returns.

The evaluator (``evaluator.py``) states the semantics in plain Python; any difference on
SQLite or PostgreSQL (null handling, collation, case folding, integer division, rounding,
datetime literals) shows up here as a shrunk counter-example.
"""

import datetime as dt
import os
import uuid

import pytest
from django.db.models import QuerySet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_offline_sync.query import FieldMap, parse_filter, parse_orderby, translate_filter, translate_orderby
from tests.models import Item

from .evaluator import Evaluator

UTC = dt.UTC
FIELDS = FieldMap.for_model(Item)
# ODATA_EXAMPLES=5000 for a longer hunt; the default keeps the suite fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("ODATA_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ALPHABET = "aAbBzZ é'É%_"
INSTANTS = [
    dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    dt.datetime(2024, 1, 2, 3, 4, 5, 679000, tzinfo=UTC),
    dt.datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    dt.datetime(2024, 6, 30, 12, 0, tzinfo=UTC),
]
DAYS = [dt.date(2024, 1, 2), dt.date(2023, 12, 31), dt.date(2024, 2, 29)]
REFS = [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")]
RATIOS = [-2.5, -1.0, -0.5, 0.0, 0.25, 0.5, 1.5, 2.5, 3.75]

texts = st.text(alphabet=ALPHABET, max_size=5)
rows = st.lists(
    st.fixed_dictionaries({
        "name": texts,
        "label": st.none() | texts,
        "count": st.none() | st.integers(-20, 20),
        "price": st.none() | st.decimals(min_value=-10, max_value=10, places=2),
        "ratio": st.none() | st.sampled_from(RATIOS),
        "flag": st.booleans(),
        "when": st.none() | st.sampled_from(INSTANTS),
        "day": st.none() | st.sampled_from(DAYS),
        "ref": st.none() | st.sampled_from(REFS),
    }),
    max_size=10,
)


def quoted(value):
    return "'" + value.replace("'", "''") + "'"


string_literals = texts.map(quoted)


def strings(depth):
    base = st.sampled_from(["name", "label", "Label", "id"]) | string_literals
    if depth == 0:
        return base
    sub = strings(depth - 1)
    return base | st.one_of(
        sub.map("tolower({})".format),
        sub.map("toupper({})".format),
        sub.map("trim({})".format),
        st.builds("concat({}, {})".format, sub, sub),
        st.builds("substring({}, {})".format, sub, st.integers(0, 6)),
        st.builds("substring({}, {}, {})".format, sub, st.integers(0, 6), st.integers(0, 6)),
        st.builds("replace({}, {}, {})".format, sub, string_literals, string_literals),
    )


def ints(depth):
    base = st.sampled_from(["count", "COUNT", "3L", "0"]) | st.integers(-20, 20).map(str)
    if depth == 0:
        return base
    sub = ints(depth - 1)
    return base | st.one_of(
        strings(1).map("length({})".format),
        st.builds("indexof({}, {})".format, strings(1), strings(0)),
        st.sampled_from(["year", "month", "day", "hour", "minute", "second"]).map("{}(when)".format),
        st.sampled_from(["year", "month", "day"]).map("{}(day)".format),
        st.builds("({} {} {})".format, sub, st.sampled_from(["add", "sub", "mul", "div", "mod"]), sub),
        sub.map("round({})".format),
    )


def numbers(depth):
    base = st.sampled_from(["price", "ratio", "0.5", "-2.5", "1.25M", "1.5f", "-0.25M", "2.5E0", "1.5d"]) | ints(0)
    if depth == 0:
        return base
    sub = numbers(depth - 1)
    return base | st.one_of(
        st.builds("({} {} {})".format, sub, st.sampled_from(["add", "sub", "mul", "div"]), sub),
        st.builds("{}({})".format, st.sampled_from(["round", "floor", "ceiling"]), sub),
    )


def instant_literal(instant, form):
    text = instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}"
    shifted = (instant + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond:06d}0"
    return {
        "offset": f"datetimeoffset'{text}Z'",
        "datetime": f"datetime'{text}Z'",
        "cast": f"cast({text}Z,Edm.DateTimeOffset)",
        "bare": f"{text}Z",
        "dotnet": f"datetimeoffset'{shifted}+01:00'",
        "string": f"'{text}Z'",
    }[form]


datetime_literals = st.builds(
    instant_literal,
    st.sampled_from(INSTANTS),
    st.sampled_from(["offset", "datetime", "cast", "bare", "dotnet", "string"]),
)
date_literals = st.sampled_from(DAYS).map(lambda d: st.sampled_from([d.isoformat(), f"cast({d.isoformat()},Edm.Date)",
                                                                      f"'{d.isoformat()}'"])).flatmap(lambda s: s)
guid_literals = st.sampled_from(REFS).map(str).flatmap(
    lambda g: st.sampled_from([f"guid'{g}'", g, f"cast({g},Edm.Guid)", f"'{g}'"])
)
comparisons = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
nullable_values = st.sampled_from(["label", "count", "price", "ratio", "when", "day", "ref", "tolower(label)",
                                   "(count add 1)", "length(label)", "year(when)"])


def predicates(depth):
    base = st.one_of(
        st.builds("{} {} {}".format, strings(2), comparisons, strings(1)),
        st.builds("{} {} {}".format, ints(2), comparisons, ints(1)),
        st.builds("{} {} {}".format, numbers(2), comparisons, numbers(1)),
        st.builds("{} {} {}".format, st.sampled_from(["when", "__updatedAt", "createdAt"]), comparisons,
                  datetime_literals),
        st.builds("day {} {}".format, comparisons, date_literals),
        st.builds("ref {} {}".format, st.sampled_from(["eq", "ne", "gt", "lt"]), guid_literals),
        st.builds("{} {} null".format, nullable_values, st.sampled_from(["eq", "ne", "gt"])),
        st.builds("null {} {}".format, st.sampled_from(["eq", "ne", "le"]), nullable_values),
        st.builds("{}({}, {})".format, st.sampled_from(["contains", "startswith", "endswith"]),
                  strings(1), strings(1)),
        st.builds("substringof({}, {})".format, strings(1), strings(1)),
        st.builds("{} in ({})".format, strings(1),
                  st.lists(string_literals | st.just("null"), max_size=3).map(", ".join)),
        st.builds("{} in ({})".format, ints(1), st.lists(
            st.integers(-20, 20).map(str) | st.sampled_from(["3L", "1.5", "null"]), max_size=3).map(", ".join)),
        st.sampled_from(["flag", "flag eq true", "flag ne false", "__deleted eq false", "true", "false"]),
    )
    if depth == 0:
        return base
    sub = predicates(depth - 1)
    return base | st.one_of(
        sub.map("not ({})".format),
        st.builds("({}) and ({})".format, sub, sub),
        st.builds("({}) or ({})".format, sub, sub),
        st.builds("({}) eq {}".format, sub, st.sampled_from(["true", "false"])),
    )


def load(data):
    QuerySet(Item).delete()
    Item.objects.bulk_create([Item(id=f"r{i}", **row) for i, row in enumerate(data)])
    return list(Item.all_objects.values())


@pytest.mark.django_db
@SETTINGS
@given(data=rows, text=predicates(2))
def test_orm_filter_matches_the_python_evaluator(data, text):
    stored = load(data)
    node = parse_filter(text, max_nodes=2000, max_depth=64)
    refused = None
    try:
        q = translate_filter(node, FIELDS)
    except Exception as exc:
        refused = exc
    if refused is not None:  # only the static overflow guard may refuse a generated tree
        assert "overflow" in str(refused), (text, refused)
        return
    got = sorted(Item.all_objects.filter(q).values_list("id", flat=True))
    evaluator = Evaluator(FIELDS)
    expected = sorted(row["id"] for row in stored if evaluator.matches(node, row))
    assert got == expected, text


ORDER_KEYS = ["name", "label", "count", "price", "ratio", "flag", "when", "day", "ref", "tolower(label)",
              "length(name)", "(count mod 3)", "(ratio mul 2)", "id"]


@pytest.mark.django_db
@SETTINGS
@given(data=rows, keys=st.lists(st.tuples(st.sampled_from(ORDER_KEYS), st.sampled_from(["", " asc", " desc"])),
                                min_size=1, max_size=3))
def test_orm_ordering_matches_the_python_evaluator(data, keys):
    stored = load(data)
    terms = parse_orderby(", ".join(key + direction for key, direction in keys))
    got = list(Item.all_objects.order_by(*translate_orderby(terms, FIELDS)).values_list("id", flat=True))
    expected = [row["id"] for row in Evaluator(FIELDS).sort(stored, terms)]
    assert got == expected, keys
