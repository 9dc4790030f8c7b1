"""How a literal meets a column: the typing rules shared by the translator and evaluators.

A literal takes the type of what it is compared with, exactly: ``1.5`` against a decimal
column is ``Decimal('1.5')`` (never a binary float), a base64 string against ``version`` is
the decoded counter, an ISO string against a datetime column is a UTC instant.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from .errors import ODataTypeError
from .lexer import INT64_MAX, INT64_MIN
from .nodes import Literal
from .parser import convert_literal

NUMERIC = ("int", "decimal", "float")
# Types a literal of each kind may be coerced to (besides its own).
_ALLOWED: dict[str, tuple[str, ...]] = {
    "int": ("int", "decimal", "float", "version"),
    "float": ("int", "decimal", "float"),
    "decimal": ("int", "decimal", "float"),
    "string": ("string", "datetime", "date", "time", "guid", "version"),
    "date": ("date", "datetime"),
    "datetime": ("datetime", "date"),
    "binary": ("version",),
}

TYPE_NAMES = {
    "string": "a string", "int": "an integer", "decimal": "a decimal", "float": "a number",
    "bool": "a boolean", "datetime": "a date and time", "date": "a date", "time": "a time of day",
    "guid": "a guid", "version": "a version", "binary": "a binary value", "null": "null",
}


# An integer as ``str(int)`` writes it: how the wire sends an integer id.
_INTEGER_ID = re.compile(r"0|-?[1-9][0-9]*")


def literal_type(literal: Literal) -> str:
    """The type a literal has on its own (``binary`` only ever meets ``version``)."""
    return literal.kind


def coerce_literal(literal: Literal, target: str, *, string_id: bool = False) -> tuple[Any, str]:
    """The value of ``literal`` compared with a ``target``-typed operand, and the type to bind it as.

    ``string_id``: the operand is an integer key the wire sends as a string, so a string
    literal holding an integer (``'7'``) is that integer. Raises ``ODataTypeError`` at the
    literal when it cannot meet that type.
    """
    if literal.kind == "null":
        return None, target
    if string_id and target == "int" and literal.kind == "string":
        return _integer_id(literal), "int"
    if literal.kind == target:
        return literal.value, target
    if target == "version":
        return _version(literal), "version"
    if target not in _ALLOWED.get(literal.kind, (literal.kind,)):
        raise ODataTypeError(
            f"Cannot compare {TYPE_NAMES.get(target, target)} with {TYPE_NAMES.get(literal.kind, literal.kind)}",
            literal.position,
            TYPE_NAMES.get(target, target),
        )
    if target in NUMERIC:
        exact = decimal.Decimal(literal.text)
        if target == "float":
            return float(exact), "float"
        if target == "int" and exact == exact.to_integral_value() and INT64_MIN <= exact <= INT64_MAX:
            return int(exact), "int"
        # Not a 64-bit integer (``1.5``, ``1e27``): compared exactly as a decimal, which no
        # driver refuses (SQLite cannot bind an int beyond 64 bits).
        return exact, "decimal"
    try:
        return convert_literal(literal, target), target
    except (ValueError, ArithmeticError, TypeError):
        raise ODataTypeError(
            f"{literal.text or literal.value!r} is not {TYPE_NAMES.get(target, target)}",
            literal.position,
            TYPE_NAMES.get(target, target),
        ) from None


def _integer_id(literal: Literal) -> int:
    value = literal.value
    assert isinstance(value, str)
    if _INTEGER_ID.fullmatch(value) and INT64_MIN <= int(value) <= INT64_MAX:
        return int(value)
    raise ODataTypeError(
        f"{value!r} is not an id of this table: its ids are integers", literal.position,
        "an integer id as the server sends it, such as '7'",
    )


def _version(literal: Literal) -> int:
    from ..models import decode_version

    value = literal.value
    try:
        if literal.kind == "string":
            assert isinstance(value, str)
            return decode_version(value)
        if literal.kind == "binary":
            assert isinstance(value, bytes)
            if len(value) != 8:
                raise ValueError("a version is 8 bytes")
            return int.from_bytes(value, "big", signed=True)
        if literal.kind == "int":
            assert isinstance(value, int)
            return value
    except (ValueError, TypeError, UnicodeError):
        pass
    raise ODataTypeError(
        "Not a version: expected the base64 of 8 bytes", literal.position, "a version such as 'AAAAAAAAJyY='"
    )
