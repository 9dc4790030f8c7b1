"""Turns an OData option value into tokens with 0-based positions.

Literals come out already converted to Python values: every form the three client
generations send (``datetime'…'``, ``datetimeoffset'…'``, bare v4 dates and guids,
``guid'…'``, ``X'…'``, ``binary'…'``, ``L``/``M``/``F``/``D`` suffixes). No Django here.

Two forms no client sends but old articles print are read as what they obviously mean:
the comparison symbols ``>= <= > < = !=`` (``op`` tokens, the parser's ``ge le gt lt eq
ne``) and ``datetimeoffset(2015-01-01T00:00:00Z)``/``datetime(…)``, the quoted literal with
parentheses. Neither was valid before, so accepting them changes no valid query.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import re
import uuid
from dataclasses import dataclass

from ..wire import UNSTORABLE_TEXT
from .errors import ODataSyntaxError
from .nodes import Literal

UTC = dt.UTC
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_WHITESPACE = " \t\r\n"
# The grammar's DIGIT is ASCII: str.isdigit() and a str pattern's \d also take "١" or "²",
# which int() reads (or refuses) as it pleases. The patterns with \\d are compiled re.ASCII.
_DIGITS = frozenset("0123456789")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATETIME_BODY = (
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{2}):(?P<m>\d{2})"
    r"(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?\s*(?P<tz>Z|z|[+-]\d{2}:?\d{2})?"
)
_DATETIME_TEXT = re.compile(_DATETIME_BODY + r"$", re.ASCII)
# Bare (unquoted) v4 literals, as CTK sends inside cast(…).
_BARE_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|z|[+-]\d{2}:\d{2})?", re.ASCII
)
_BARE_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_BARE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_BARE_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?", re.ASCII)
_TIME_TEXT = re.compile(r"(?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?$", re.ASCII)
_NUMBER = re.compile(
    r"-?\d+(?P<frac>\.\d+)?(?P<exp>[eE][+-]?\d+)?(?P<suffix>[lLmMfFdD])?(?![A-Za-z0-9_])", re.ASCII
)
_TYPED_PREFIXES = ("datetime", "datetimeoffset", "guid", "x", "binary", "date", "time", "timeofday")
_DECIMAL_LIMIT = decimal.Decimal("1e28")

PUNCTUATION = "(),/"
#: Comparison symbols and the operators they stand for (longest first when lexing).
SYMBOL_OPERATORS = {">=": "ge", "<=": "le", "!=": "ne", ">": "gt", "<": "lt", "=": "eq"}
_SYMBOL = re.compile(r">=|<=|!=|>|<|=")
_CALL_FORM_LITERALS = ("datetime", "datetimeoffset")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "ident", "op" (a comparison symbol), "literal", "(", ")", ",", "/", "eof"
    position: int
    text: str
    literal: Literal | None = None


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``eof`` token at ``len(text)``."""
    bad = UNSTORABLE_TEXT.search(text)  # no client sends them
    if bad:
        raise ODataSyntaxError("Invalid character in the query", bad.start(), "printable text")
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            tokens.append(Token("eof", end, ""))
            return tokens
        char = text[pos]
        if char in PUNCTUATION:
            tokens.append(Token(char, pos, char))
            pos += 1
        elif (symbol := _SYMBOL.match(text, pos)) is not None:
            tokens.append(Token("op", pos, symbol.group()))
            pos = symbol.end()
        elif char == "'":
            value, after = read_quoted(text, pos)
            tokens.append(Token("literal", pos, text[pos:after], Literal(position=pos, kind="string", value=value)))
            pos = after
        elif char in _DIGITS or (char == "-" and pos + 1 < end and text[pos + 1] in _DIGITS):
            token = _bare_literal(text, pos)
            tokens.append(token)
            pos += len(token.text)
        else:
            guid = _BARE_GUID.match(text, pos)
            if guid and not _continues_identifier(text, guid.end()):
                tokens.append(_literal_token(text, pos, guid.end(), "guid", uuid.UUID(guid.group())))
                pos = guid.end()
                continue
            ident = _IDENT.match(text, pos)
            if ident is None:
                raise ODataSyntaxError(
                    f"Unexpected character {char!r}", pos, "a property, literal, function, operator or parenthesis"
                )
            name = ident.group()
            after = ident.end()
            if after < end and text[after] == "'" and name.lower() in _TYPED_PREFIXES:
                raw, stop = read_quoted(text, after)
                literal = typed_literal(name.lower(), raw, pos, after + 1)
                tokens.append(Token("literal", pos, text[pos:stop], literal))
                pos = stop
            elif name.lower() in _CALL_FORM_LITERALS and text[after:].lstrip(_WHITESPACE).startswith("("):
                stop = _call_form_literal(text, pos, after, name.lower(), tokens)
                pos = stop
            else:
                tokens.append(Token("ident", pos, name))
                pos = after


def _call_form_literal(text: str, pos: int, after: int, kind: str, tokens: list[Token]) -> int:
    """``datetimeoffset(2015-01-01T00:00:00Z)``: the literal ``datetimeoffset'…'``; return its end."""
    opening = text.index("(", after)
    closing = text.find(")", opening)
    if closing < 0:
        raise ODataSyntaxError(f"Unterminated {kind}(…) literal", len(text), "')'")
    inner = opening + 1
    raw = text[inner:closing]
    start = inner + len(raw) - len(raw.lstrip(_WHITESPACE))
    literal = typed_literal(kind, raw.strip(_WHITESPACE), pos, start)
    tokens.append(Token("literal", pos, text[pos : closing + 1], literal))
    return closing + 1


def _continues_identifier(text: str, index: int) -> bool:
    return index < len(text) and (text[index].isalnum() or text[index] == "_")


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the ``'…'`` string at ``start`` (``''`` escapes a quote); return value and end."""
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find("'", pos)
        if close < 0:
            raise ODataSyntaxError("Unterminated string literal", len(text), "a closing quote (')")
        parts.append(text[pos:close])
        if close + 1 < len(text) and text[close + 1] == "'":
            parts.append("'")
            pos = close + 2
            continue
        return "".join(parts), close + 1


def _literal_token(text: str, start: int, stop: int, kind: str, value: object, source: str = "") -> Token:
    literal = Literal(position=start, kind=kind, value=value, text=source)  # type: ignore[arg-type]
    return Token("literal", start, text[start:stop], literal)


def _bare_literal(text: str, pos: int) -> Token:
    """A literal starting with a digit or ``-``: datetime, guid, date, time or number."""
    if text[pos] != "-":
        for pattern, kind in (
            (_BARE_DATETIME, "datetime"),
            (_BARE_GUID, "guid"),
            (_BARE_DATE, "date"),
            (_BARE_TIME, "time"),
        ):
            match = pattern.match(text, pos)
            if match and not _continues_identifier(text, match.end()):
                raw = match.group()
                literal = typed_literal(kind, raw, pos, pos)
                return Token("literal", pos, raw, literal)
    match = _NUMBER.match(text, pos)
    if match is None:
        raise ODataSyntaxError("Malformed number", pos, "a number")
    return Token("literal", pos, match.group(), number_literal(match, pos))


def number_literal(match: re.Match[str], pos: int) -> Literal:
    raw = match.group()
    suffix = (match.group("suffix") or "").lower()
    digits = raw[:-1] if suffix else raw
    is_real = bool(match.group("frac") or match.group("exp"))
    if suffix == "m":
        kind = "decimal"
    elif suffix in ("f", "d") or is_real:
        kind = "float"
    else:
        kind = "int"
    if kind == "int":
        value_int = int(digits)
        if not INT64_MIN <= value_int <= INT64_MAX:
            raise ODataSyntaxError("Integer literal out of range", pos, "a 64-bit integer")
        return Literal(position=pos, kind="int", value=value_int, text=digits)
    if suffix == "l":
        raise ODataSyntaxError("The L suffix needs an integer", pos, "an integer before L")
    try:
        exact = decimal.Decimal(digits)
        # copy_abs, not abs(): abs() rounds in the context and overflows on an exponent past its
        # Emax (1e308000000000002726); an exponent past what Decimal holds at all overflows in
        # the constructor. Either is a number out of range, not a server error.
        in_range = exact == 0 or decimal.Decimal("1e-28") <= exact.copy_abs() < _DECIMAL_LIMIT
    except decimal.Overflow:
        in_range = False
    except decimal.InvalidOperation:  # pragma: no cover - the pattern only admits numbers
        raise ODataSyntaxError("Malformed number", pos, "a number") from None
    if not in_range:
        raise ODataSyntaxError("Number literal out of range", pos, "a number between 1e-28 and 1e28 in magnitude")
    if kind == "decimal":
        return Literal(position=pos, kind="decimal", value=exact, text=digits)
    return Literal(position=pos, kind="float", value=float(digits), text=digits)


def typed_literal(kind: str, raw: str, pos: int, inner: int) -> Literal:
    """Convert the body ``raw`` of a typed literal; ``inner`` is where ``raw`` starts."""
    if kind in ("datetime", "datetimeoffset"):
        try:
            return Literal(position=pos, kind="datetime", value=parse_datetime(raw), text=raw)
        except OverflowError:  # well formed, but its offset moves it outside years 1-9999
            raise ODataSyntaxError(
                f"The {kind} literal is out of range: in UTC it falls outside the years 1 to 9999",
                inner, "a date and time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z",
            ) from None
        except ValueError:
            raise ODataSyntaxError(f"Malformed {kind} literal", inner, _EXPECTED_FORMS[kind]) from None
    try:
        if kind == "date":
            return Literal(position=pos, kind="date", value=dt.date.fromisoformat(raw), text=raw)
        if kind in ("time", "timeofday"):
            return Literal(position=pos, kind="time", value=parse_time(raw), text=raw)
        if kind == "guid":
            if not _BARE_GUID.fullmatch(raw.strip("{}")):
                raise ValueError(raw)
            return Literal(position=pos, kind="guid", value=uuid.UUID(raw), text=raw)
        if kind == "x":
            return Literal(position=pos, kind="binary", value=bytes.fromhex(raw), text=raw)
        if kind == "binary":
            padded = raw + "=" * (-len(raw) % 4)
            data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            return Literal(position=pos, kind="binary", value=data, text=raw)
    except (ValueError, OverflowError, binascii.Error):
        pass
    raise ODataSyntaxError(f"Malformed {kind} literal", inner, _EXPECTED_FORMS.get(kind, f"a {kind} value"))


_EXPECTED_FORMS = {
    "datetime": "an ISO 8601 date and time such as 2024-01-02T03:04:05.678Z",
    "datetimeoffset": "an ISO 8601 date and time such as 2024-01-02T03:04:05.678+00:00",
    "date": "a date such as 2024-01-02",
    "time": "a time of day such as 03:04:05.678",
    "timeofday": "a time of day such as 03:04:05.678",
    "guid": "a guid such as 0f8fad5b-d9cb-469f-a165-70867728950e",
    "x": "an even number of hexadecimal digits",
    "binary": "base64 text",
}


def parse_datetime(raw: str) -> dt.datetime:
    """An ISO 8601 date-time as an aware UTC instant, truncated to milliseconds.

    A missing offset means UTC (all clients send UTC). Fractions beyond milliseconds are
    dropped, so ``.1234567+00:00`` (the .NET ``o`` format) and ``.123Z`` are the same instant.
    """
    match = _DATETIME_TEXT.match(raw.strip())
    if match is None:
        raise ValueError(raw)
    fraction = (match.group("f") or "")[:3].ljust(3, "0")
    value = dt.datetime.fromisoformat(
        f"{match.group('date')}T{match.group('h')}:{match.group('m')}:{match.group('s') or '00'}"
    ).replace(microsecond=int(fraction) * 1000)
    tz = match.group("tz")
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= dt.timedelta(hours=24):
            raise ValueError(raw)
        value = value.replace(tzinfo=dt.timezone(sign * offset))
        return value.astimezone(UTC)
    return value.replace(tzinfo=UTC)


def parse_time(raw: str) -> dt.time:
    match = _TIME_TEXT.match(raw)
    if match is None:
        raise ValueError(raw)
    fraction = (match.group("f") or "")[:6].ljust(6, "0")
    return dt.time(int(match.group("h")), int(match.group("m")), int(match.group("s") or 0), int(fraction))
