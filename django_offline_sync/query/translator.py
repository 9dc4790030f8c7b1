"""Turns a syntax tree into ``Q`` objects and ``order_by`` terms, checked against a ``FieldMap``.

Null semantics are C#'s, as the .NET and Datasync servers evaluate filters through Entity
Framework: every predicate is true or false, never unknown. ``null eq null`` is true,
``f ne 'x'`` is true where ``f`` is null, ``gt``/``ge``/``lt``/``le`` with a null side are
false, and ``not p`` is exactly the rows where ``p`` is false. String predicates
(``contains``, ``startswith``…) are false on a null argument; value functions return null on
null input, except ``concat``, which reads null as ''. Each comparison adds the ``IS [NOT]
NULL`` terms that make this hold in SQL's three-valued logic.

Strings compare by code point and ``tolower``/``toupper`` fold ASCII letters only, on every
backend (see ``functions``). Integer arithmetic is 64-bit with a static overflow check;
arithmetic on decimal or float operands is done in double precision; division or modulo by
zero gives null. Every string-valued expression carries its worst-case length, so that
``concat``/``replace`` nests that could build huge strings inside the database (each
``replace`` can multiply a length) are refused before any SQL runs (``max_string``), and so
are string searches whose worst case is too slow (``max_search``, see ``Translator.searched``).
A column without ``max_length`` counts as long as the largest value the endpoints accept
(``text_length``), not as some small guess. No SQL is built from strings: everything is
Django expressions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OrderBy,
    Q,
    TimeField,
    UUIDField,
    Value,
    When,
)
from django.db.models.expressions import CombinedExpression, Expression
from django.db.models.functions import (
    Cast,
    Ceil,
    Concat,
    ExtractDay,
    ExtractHour,
    ExtractMinute,
    ExtractMonth,
    ExtractSecond,
    ExtractYear,
    Floor,
    Left,
    Length,
    NullIf,
    Replace,
    Right,
    StrIndex,
    Substr,
    Trim,
)
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual
from django.db.models.lookups import In as InLookup

from .coercion import NUMERIC, TYPE_NAMES, coerce_literal
from .errors import ODataLimitError, ODataTypeError
from .fields import INT64_BOUND, FieldMap
from .functions import AsciiLower, AsciiUpper, CodePointEqual, CodePointOrder, IntDivide, IntModulo
from .nodes import ARITHMETIC_OPS, COMPARISON_OPS, BinaryOp, BoolOp, Call, In, Literal, Node, Not, OrderTerm, Property
from .shapes import SlotValue

UTC = dt.UTC
# Constant conditions as real SQL (``1 = 0``), not Django's empty-``IN`` shortcut, whose
# EmptyResultSet would escape from a predicate compared as a value.
FALSE = Q(Exact(Value(1), Value(0)))
TRUE = Q(Exact(Value(1), Value(1)))
PREDICATE_FUNCTIONS = ("contains", "substringof", "startswith", "endswith")
_LOOKUPS = {
    "eq": Exact, "gt": GreaterThan, "ge": GreaterThanOrEqual, "lt": LessThan, "le": LessThanOrEqual,
}
# One unbound instance per kind, shared by every expression: an output field is only read
# (its type, its converters, get_db_prep_value), as Django's own functions share theirs
# (``output_field = DateTimeField()`` on the class). Building one per literal was about 1 %
# of a pull page.
_OUTPUT_FIELDS: dict[str, Any] = {
    "string": CharField(), "int": BigIntegerField(), "decimal": DecimalField(), "float": FloatField(),
    "bool": BooleanField(), "datetime": DateTimeField(), "date": DateField(), "time": TimeField(),
    "guid": UUIDField(), "version": BigIntegerField(),
}
_EXTRACTS = {
    "year": (ExtractYear, ("datetime", "date"), 10_000),
    "month": (ExtractMonth, ("datetime", "date"), 13),
    "day": (ExtractDay, ("datetime", "date"), 32),
    "hour": (ExtractHour, ("datetime", "time"), 24),
    "minute": (ExtractMinute, ("datetime", "time"), 60),
    "second": (ExtractSecond, ("datetime", "time"), 61),
}


@dataclass(frozen=True)
class Operand:
    """A translated value: a Django expression (``None`` while it is a bare literal) and its type."""

    expression: Any
    type: str
    nullable: bool
    bound: int | None = None  # largest magnitude, for int-typed operands
    literal: Literal | None = None
    length: int | None = None  # worst-case length in characters, for string-typed operands
    #: The part of ``length`` that is one copy of a column without ``max_length`` (a value the
    #: database holds anyway), which ``max_string`` does not count; see ``Translator.bounded``.
    stored: int = 0
    string_id: bool = False  # an integer key the wire sends as a string (FieldInfo.string_id)


_INT32_MAX = 2**31 - 1
#: Worst-case length of every string a ``$filter``/``$orderby`` may build (``MAX_FILTER_STRING``).
DEFAULT_MAX_STRING = 65536
#: Worst-case character comparisons of the string searches of one ``$filter``/``$orderby`` on
#: one row (``MAX_FILTER_SEARCH``); see ``Translator.searched``.
DEFAULT_MAX_SEARCH = 2**28
#: The default length of a string column without ``max_length`` (``TextField``): the largest
#: value the default body limit lets a client store, ``MAX_BODY_BYTES`` (a character takes at
#: least one byte of JSON; each item of a batch is held to it too). It once was 4096, which
#: no write enforced: a client stored 900 KB and searched it with filters that were "4096
#: characters" here.
UNBOUNDED_STRING_LENGTH = 1_048_576


def output_field(kind: str) -> Any:
    return _OUTPUT_FIELDS[kind]


class Translator:
    """Translates the nodes of one tree against one ``FieldMap``."""

    def __init__(
        self,
        field_map: FieldMap,
        *,
        max_string: int = DEFAULT_MAX_STRING,
        max_search: int = DEFAULT_MAX_SEARCH,
        text_length: int = UNBOUNDED_STRING_LENGTH,
        slots: SlotRecorder | None = None,
    ) -> None:
        self.field_map = field_map
        self.max_string = max_string
        self.max_search = max_search
        #: The worst-case length of a string column without ``max_length``.
        self.text_length = text_length
        #: Worst-case character comparisons of the searches translated so far (one row).
        self.search_work = 0
        #: Where the literals bound as ``SlotValue`` are recorded (``shapes``); None: plain ``Value``.
        self.slots = slots

    # -- predicates ----------------------------------------------------------------------

    def predicate(self, node: Node) -> Q:
        """A ``Q`` that is true or false (never null) for every row."""
        if isinstance(node, BoolOp):
            parts = [self.predicate(operand) for operand in node.operands]
            result = parts[0]
            for part in parts[1:]:
                result = (result & part) if node.op == "and" else (result | part)
            return result
        if isinstance(node, Not):
            return ~self.predicate(node.operand)
        if isinstance(node, BinaryOp) and node.op in COMPARISON_OPS:
            return self.compare(node)
        if isinstance(node, In):
            return self.in_list(node)
        if isinstance(node, Call) and node.name in PREDICATE_FUNCTIONS:
            return self.string_predicate(node)
        operand = self.operand(node)
        if operand.type != "bool":
            raise ODataTypeError("Expected a boolean expression", node.position, "a condition such as a comparison")
        if operand.literal is not None:
            return TRUE if operand.literal.value else FALSE
        return self._not_null(Q(Exact(operand.expression, Value(True))), operand)

    def compare(self, node: BinaryOp) -> Q:
        left, right = self.operand(node.left), self.operand(node.right)
        for this, other in ((left, right), (right, left)):
            if this.type == "null":
                if other.type == "null":
                    return TRUE if node.op == "eq" else FALSE
                other = self.materialize(other, other.type)
                if node.op not in ("eq", "ne"):
                    return FALSE
                is_null = Q(IsNull(other.expression, True)) if other.nullable else FALSE
                return is_null if node.op == "eq" else ~is_null
        left, right = self.unify(left, right, node, slot=True)
        if node.op not in ("eq", "ne") and left.type == "bool":
            raise ODataTypeError(f"'{node.op}' cannot compare booleans", node.position, "eq or ne")
        lhs, rhs = left.expression, right.expression
        if left.type == "string":
            lhs = CodePointEqual(lhs) if node.op in ("eq", "ne") else CodePointOrder(lhs)
        lookup = _LOOKUPS["eq" if node.op == "ne" else node.op]
        result = self._not_null(self._not_null(Q(lookup(lhs, rhs)), left), right)
        if node.op in ("eq", "ne") and left.nullable and right.nullable:
            result |= Q(IsNull(left.expression, True)) & Q(IsNull(right.expression, True))
        return ~result if node.op == "ne" else result

    def in_list(self, node: In) -> Q:
        operand = self.operand(node.operand)
        if operand.type in ("null", "bool") and operand.literal is not None:
            raise ODataTypeError("'in' needs a property or expression on its left", node.position, "a property")
        if operand.literal is not None:
            operand = self.materialize(operand, operand.type)
        values = []
        has_null = False
        for item in node.items:
            value, bind = coerce_literal(item, operand.type, string_id=operand.string_id)
            if value is None:
                has_null = True
            elif bind != operand.type and operand.type == "int":
                continue  # a number that is no 64-bit integer never equals an integer
            elif value not in values:
                values.append(value)
        result = FALSE
        if values:
            lhs = CodePointEqual(operand.expression) if operand.type == "string" else operand.expression
            result = self._not_null(Q(InLookup(lhs, values)), operand)
        if has_null and operand.nullable:
            result |= Q(IsNull(operand.expression, True))
        return result

    def string_predicate(self, node: Call) -> Q:
        args = [self.string_arg(node, arg) for arg in node.args]
        if node.name == "substringof":
            args.reverse()
        text, part = args
        if node.name in ("contains", "substringof"):
            self.searched(node, text, part)
            found = Q(GreaterThan(StrIndex(CodePointEqual(text.expression), CodePointEqual(part.expression)), 0))
        elif node.name == "startswith":
            found = Q(Exact(CodePointEqual(Left(text.expression, Length(part.expression))), part.expression))
        else:
            found = Q(Exact(CodePointEqual(Right(text.expression, Length(part.expression))), part.expression))
        return self._not_null(self._not_null(found, text), part)

    def _not_null(self, q: Q, operand: Operand) -> Q:
        if operand.nullable:
            return q & Q(IsNull(operand.expression, False))
        return q

    # -- values --------------------------------------------------------------------------

    def operand(self, node: Node) -> Operand:
        if isinstance(node, Literal):
            kind = "null" if node.kind == "null" else node.kind
            bound = abs(node.value) if node.kind == "int" and isinstance(node.value, int) else None
            length = len(node.value) if isinstance(node.value, str) else None
            return Operand(None, kind, node.kind == "null", bound, node, length)
        if isinstance(node, Property):
            info = self.field_map.resolve(node.name, node.position)
            length = stored = None
            if info.type == "string":
                length = info.max_length or self.text_length
                stored = 0 if info.max_length else length
            column = F(info.attname)
            return Operand(
                column, info.type, info.nullable, info.bound, length=length, stored=stored or 0,
                string_id=info.string_id,
            )
        if isinstance(node, BinaryOp) and node.op in ARITHMETIC_OPS:
            return self.arithmetic(node)
        if isinstance(node, Call) and node.name not in PREDICATE_FUNCTIONS:
            return self.call(node)
        # A predicate used as a value (``contains(a,'x') eq true``): never null.
        return Operand(ExpressionWrapper(self.predicate(node), output_field=BooleanField()), "bool", False)

    def materialize(self, operand: Operand, kind: str, *, string_id: bool = False, slot: bool = False) -> Operand:
        """``operand`` as a database expression of type ``kind`` (binding a literal).

        ``string_id``: compared with an integer key the wire sends as a string (``id eq '7'``).
        ``slot``: the literal's value changes nothing but the value bound (a column or
        expression compared with it), so with a recorder it becomes a ``SlotValue``.
        """
        if operand.literal is None:
            return operand
        value, bind = coerce_literal(operand.literal, kind, string_id=string_id)
        if bind not in _OUTPUT_FIELDS:
            raise ODataTypeError(
                f"{TYPE_NAMES.get(bind, bind).capitalize()} can only be compared with a version",
                operand.literal.position,
                "a property on the other side",
            )
        if value is None:
            return replace(operand, type="null")
        length = len(value) if isinstance(value, str) else None
        if slot and self.slots is not None:
            expression: Any = self.slots.add(operand.literal, value, output_field(bind), bind)
        else:
            expression = Value(value, output_field=output_field(bind))
        return Operand(expression, kind, False, operand.bound, None, length)

    def unify(self, left: Operand, right: Operand, node: BinaryOp, *, slot: bool = False) -> tuple[Operand, Operand]:
        """Bring both sides of a comparison to one type, or raise a positioned type error.

        ``slot``: a literal met by a non-literal may be bound per request (``materialize``).
        """
        if left.literal is not None and right.literal is None:
            return self.materialize(left, right.type, string_id=right.string_id, slot=slot), right
        if right.literal is not None and left.literal is None:
            return left, self.materialize(right, left.type, string_id=left.string_id, slot=slot)
        if left.literal is not None and right.literal is not None:
            kind = left.type if left.type == right.type else _numeric_join(left, right, node)
            return self.materialize(left, kind), self.materialize(right, kind)
        if left.type == right.type:
            return left, right
        kind = _numeric_join(left, right, node)
        if kind == "float":
            return self.as_float(left), self.as_float(right)
        return left, right

    def as_float(self, operand: Operand) -> Operand:
        if operand.literal is not None:
            return self.materialize(operand, "float")
        if operand.type == "float":
            return operand
        return replace(operand, expression=Cast(operand.expression, FloatField()), type="float", bound=None)

    def arithmetic(self, node: BinaryOp) -> Operand:
        left, right = self.operand(node.left), self.operand(node.right)
        for side, child in ((left, node.left), (right, node.right)):
            if side.type not in NUMERIC and side.type != "null":
                raise ODataTypeError(
                    f"'{node.op}' needs numbers, not {TYPE_NAMES.get(side.type, side.type)}", child.position, "a number"
                )
        if left.type == "null" or right.type == "null":
            other = right if left.type == "null" else left
            other = self.materialize(other, "int" if other.type == "int" else "float")
            return Operand(Value(None, output_field=output_field(other.type)), other.type, True)
        nullable = left.nullable or right.nullable
        if left.type == "int" and right.type == "int":
            return self._int_arithmetic(node, left, right, nullable)
        if node.op == "mod":
            raise ODataTypeError("'mod' needs integers", node.position, "integer operands")
        lhs, rhs = self.as_float(left).expression, self.as_float(right).expression
        if node.op == "div":
            rhs = NullIf(rhs, Value(0.0, output_field=FloatField()))
            nullable = True
        connector = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[node.op]
        return Operand(CombinedExpression(lhs, connector, rhs, output_field=FloatField()), "float", nullable)

    def _int_arithmetic(self, node: BinaryOp, left: Operand, right: Operand, nullable: bool) -> Operand:
        lb, rb = left.bound or 0, right.bound or 0
        bound = {"add": lb + rb, "sub": lb + rb, "mul": lb * rb, "div": lb, "mod": min(lb, rb)}[node.op]
        if bound >= INT64_BOUND:
            raise ODataTypeError(
                "This arithmetic could overflow a 64-bit integer", node.position, "smaller operands"
            )
        lhs, rhs = self._bigint(left), self._bigint(right)
        if node.op in ("div", "mod"):
            rhs = NullIf(rhs, Value(0, output_field=BigIntegerField()))
            expression: Expression = (IntDivide if node.op == "div" else IntModulo)(lhs, rhs)
            return Operand(expression, "int", True, bound)
        connector = {"add": "+", "sub": "-", "mul": "*"}[node.op]
        return Operand(CombinedExpression(lhs, connector, rhs, output_field=BigIntegerField()), "int", nullable, bound)

    def _bigint(self, operand: Operand) -> Any:
        if operand.literal is not None:
            return self.materialize(operand, "int").expression
        if operand.bound is not None and operand.bound <= 2**31:
            return Cast(operand.expression, BigIntegerField())
        return operand.expression

    # -- functions -----------------------------------------------------------------------

    def string_arg(self, call: Call, node: Node) -> Operand:
        operand = self.operand(node)
        if operand.type == "null":
            raise ODataTypeError(f"{call.name}() needs a string, not null", node.position, "a string")
        operand = self.materialize(operand, "string") if operand.literal is not None else operand
        if operand.type != "string":
            raise ODataTypeError(
                f"{call.name}() needs a string, not {TYPE_NAMES.get(operand.type, operand.type)}",
                node.position,
                "a string",
            )
        return operand

    def int_literal_arg(self, call: Call, node: Node) -> int:
        if not (isinstance(node, Literal) and node.kind == "int" and isinstance(node.value, int) and node.value >= 0):
            raise ODataTypeError(
                f"{call.name}() takes non-negative integer literals here", node.position, "a non-negative integer"
            )
        if node.value >= 2**31:
            raise ODataTypeError("Integer argument too large", node.position, "an integer below 2147483648")
        return node.value

    def call(self, node: Call) -> Operand:
        name = node.name
        if name in ("tolower", "toupper", "trim", "length"):
            (text,) = [self.string_arg(node, arg) for arg in node.args]
            if name == "length":
                return Operand(Length(text.expression), "int", text.nullable, 2**31)
            function = {"tolower": AsciiLower, "toupper": AsciiUpper, "trim": Trim}[name]
            return Operand(
                function(text.expression), "string", text.nullable, length=text.length, stored=text.stored
            )
        if name == "concat":
            parts = [self.string_arg(node, arg) for arg in node.args]
            joined = Concat(*(p.expression for p in parts), output_field=CharField())
            # Only one copy of a stored value is free: concat(body, body) counts one body in full.
            stored = max(p.stored for p in parts)
            length = self.bounded(node, sum(self._length(p) for p in parts), stored)
            return Operand(joined, "string", False, length=length, stored=stored)
        if name == "replace":
            text, old, new = [self.string_arg(node, arg) for arg in node.args]
            nullable = text.nullable or old.nullable or new.nullable
            self.searched(node, text, old)
            # Worst case: `text` is all matches of `find` (a literal's exact length, else as short
            # as 1 character), each replaced by the longest `new`. Replacing '' changes nothing.
            size, grown = self._length(text), self._length(new)
            find = self._length(old) if isinstance(node.args[1], Literal) else 1
            length = self.bounded(node, size + (size // find) * max(0, grown - find) if find else size, text.stored)
            return Operand(
                Replace(text.expression, old.expression, new.expression), "string", nullable,
                length=length, stored=text.stored,
            )
        if name == "indexof":
            text, part = [self.string_arg(node, arg) for arg in node.args]
            self.searched(node, text, part)
            found = StrIndex(CodePointEqual(text.expression), CodePointEqual(part.expression))
            expression = CombinedExpression(found, "-", Value(1), output_field=IntegerField())
            return Operand(expression, "int", text.nullable or part.nullable, 2**31)
        if name == "substring":
            text = self.string_arg(node, node.args[0])
            start = self.int_literal_arg(node, node.args[1])
            count = self.int_literal_arg(node, node.args[2]) if len(node.args) == 3 else None
            # SQL counts from 1. A start of 2**31 - 1 would become 2**31, which PostgreSQL binds
            # as a bigint (no substring(text, bigint) exists) and SQLite's substr() wraps to a
            # negative 32-bit position; no string reaches that position on any backend
            # (PostgreSQL and MySQL cap values at 1 GB), so the clamp changes no result.
            longest = max(0, self._length(text) - start)
            if count is not None:
                longest = min(longest, count)
            piece = Substr(text.expression, min(start + 1, _INT32_MAX), count)
            return Operand(piece, "string", text.nullable, length=longest, stored=min(text.stored, longest))
        if name in _EXTRACTS:
            extract, types, bound = _EXTRACTS[name]
            (value,) = [self.operand(arg) for arg in node.args]
            if value.literal is not None or value.type not in types:
                raise ODataTypeError(
                    f"{name}() needs a {' or '.join(types)} property or expression",
                    node.args[0].position,
                    " or ".join(TYPE_NAMES[t] for t in types),
                )
            tzinfo = UTC if value.type == "datetime" else None
            return Operand(extract(value.expression, tzinfo=tzinfo), "int", value.nullable, bound)
        if name in ("floor", "ceiling", "round"):
            (value,) = [self.operand(arg) for arg in node.args]
            if value.type not in NUMERIC:
                raise ODataTypeError(f"{name}() needs a number", node.args[0].position, "a number")
            if value.type == "int":
                return self.materialize(value, "int")
            number = self.as_float(value)
            return Operand(_rounding(name, number.expression), "float", number.nullable)
        raise ODataTypeError(f"{name}() cannot be used here", node.position, "a value")  # pragma: no cover

    def _length(self, operand: Operand) -> int:
        """An operand's worst-case length; one of unknown length counts as a text column."""
        return self.text_length if operand.length is None else operand.length

    def bounded(self, node: Call, length: int, stored: int = 0) -> int:
        """``length``, the worst case of what ``node`` builds, if it is within ``max_string``.

        ``stored`` characters of it are one copy of a column without ``max_length``, not
        counted: that value is in the database already, and its honest worst case (the largest
        body, ``text_length``) is far above ``max_string``, so counting it would refuse even
        ``concat(body, '!')``. What is counted is what the expression adds: a second copy
        (``concat(body, body)``) or the growth of a ``replace`` counts in full. A column with
        a ``max_length`` counts in full, as it always did.
        """
        if length - stored > self.max_string:
            built = f"{length} characters" if not stored else f"{length - stored} characters more than a stored value"
            raise ODataLimitError(
                f"{node.name}() could build a string of {built}, more than the "
                f"{self.max_string} allowed (MAX_FILTER_STRING)",
                node.position,
                f"strings of at most {self.max_string} characters: a shorter replacement or fewer nested calls",
            )
        return length

    def searched(self, node: Call, text: Operand, part: Operand) -> None:
        """Count the worst case of searching ``text`` for ``part``; over ``max_search``: a 400.

        ``contains``/``substringof``/``indexof`` (``instr``, ``strpos``, ``LOCATE``) and the
        ``find`` of ``replace`` search naively: at each of up to n positions of the text they
        compare up to m characters of the sought string, n * m in all (a text of ``a``s and a
        sought ``a…ab``). PostgreSQL's ``statement_timeout`` and SQLite's progress handler can
        stop a statement between rows, never inside one function call, nor between the calls
        of one row's condition; a 900 KB value searched for an 800 KB string built from it ran
        31 s on SQLite past a 10 s limit. So the sum over one expression of
        n * min(n, m) (a sought string longer than the text is rejected at once) with both
        lengths at their worst case must stay within ``max_search``: about 0.1 s of
        ``strpos`` on PostgreSQL, less on SQLite. A literal sought string has its own length,
        so the filters clients send (``contains(body, 'milk')``) cost little even over the
        largest text. ``startswith``/``endswith`` compare one prefix or suffix, linear work,
        and are not counted.
        """
        searched, sought = self._length(text), self._length(part)
        cost = searched * min(searched, sought)
        self.search_work += cost
        if self.search_work > self.max_search:
            total = "" if self.search_work == cost else f", {self.search_work} with the searches before it"
            raise ODataLimitError(
                f"{node.name}() could compare {cost} characters per row (a string of up to {searched} "
                f"characters searched for one of up to {sought}){total}, more than the {self.max_search} "
                "allowed (MAX_FILTER_SEARCH)",
                node.position,
                "a shorter string to search for (a literal, not a column or an expression built from one), "
                "a shorter string to search in (substring()), or fewer searches",
            )

    # -- ordering ------------------------------------------------------------------------

    def order_term(self, term: OrderTerm) -> str | OrderBy:
        node = term.expression
        if isinstance(node, Property):
            info = self.field_map.resolve(node.name, node.position)
            if (info.system and info.type != "string") or info.attname == "id":
                # System columns are never null and back the (updated_at, id) index: keep plain.
                return f"-{info.attname}" if term.descending else info.attname
            operand = Operand(F(info.attname), info.type, info.nullable)
        else:
            operand = self.operand(node)
            if operand.literal is not None:
                raise ODataTypeError("Cannot order by a constant", node.position, "a property or expression")
        expression = CodePointOrder(operand.expression) if operand.type == "string" else operand.expression
        # Nulls sort low, as on SQL Server: first ascending, last descending, on every backend.
        if term.descending:
            return OrderBy(expression, descending=True, nulls_last=True if operand.nullable else None)
        return OrderBy(expression, nulls_first=True if operand.nullable else None)




def _numeric_join(left: Operand, right: Operand, node: BinaryOp) -> str:
    if left.type in NUMERIC and right.type in NUMERIC:
        if "float" in (left.type, right.type):
            return "float"
        return "decimal" if "decimal" in (left.type, right.type) else "int"
    raise ODataTypeError(
        f"Cannot compare {TYPE_NAMES.get(left.type, left.type)} with {TYPE_NAMES.get(right.type, right.type)}",
        node.position,
        f"operands of the same type ({TYPE_NAMES.get(left.type, left.type)})",
    )


def _rounding(name: str, value: Any) -> Any:
    if name == "floor":
        return Floor(value, output_field=FloatField())
    if name == "ceiling":
        return Ceil(value, output_field=FloatField())
    # Half away from zero on every backend (PostgreSQL's round(double) rounds half to even).
    half = Value(0.5, output_field=FloatField())
    negative = Floor(CombinedExpression(-1 * value, "+", half, output_field=FloatField()), output_field=FloatField())
    return Case(
        When(LessThan(value, Value(0.0, output_field=FloatField())), then=-1 * negative),
        default=Floor(CombinedExpression(value, "+", half, output_field=FloatField()), output_field=FloatField()),
        output_field=FloatField(),
    )


def translate_filter(
    node: Node,
    field_map: FieldMap,
    *,
    max_string: int = DEFAULT_MAX_STRING,
    max_search: int = DEFAULT_MAX_SEARCH,
    text_length: int = UNBOUNDED_STRING_LENGTH,
    slots: SlotRecorder | None = None,
) -> Q:
    """The ``Q`` selecting the rows where the ``$filter`` tree ``node`` is true.

    ``max_string`` bounds the worst-case length of every string the expression builds,
    ``max_search`` the worst-case comparisons of its string searches on one row;
    ``text_length`` is the worst-case length of a string column without ``max_length``.
    ``slots``: record the literals bound per request (``query.shapes``).
    """
    translator = Translator(
        field_map, max_string=max_string, max_search=max_search, text_length=text_length, slots=slots
    )
    return translator.predicate(node)


class SlotRecorder:
    """The literals of one translation that were bound as ``SlotValue``, in order."""

    def __init__(self) -> None:
        #: ``id(literal)`` → the type it was bound as (``shapes.filter_shape``)
        self.kinds: dict[int, str] = {}
        #: the bound values, by slot index
        self.values: list[Any] = []

    def add(self, literal: Literal, value: Any, field: Any, bind: str) -> SlotValue:
        self.kinds[id(literal)] = bind
        self.values.append(value)
        return SlotValue(value, field, len(self.values) - 1)


def translate_orderby(
    terms: Sequence[OrderTerm],
    field_map: FieldMap,
    *,
    max_string: int = DEFAULT_MAX_STRING,
    max_search: int = DEFAULT_MAX_SEARCH,
    text_length: int = UNBOUNDED_STRING_LENGTH,
) -> list[str | OrderBy]:
    """``order_by()`` arguments for ``terms``, always ending with ``id`` as the tie-breaker.

    The limits are ``translate_filter``'s; the searches of all the terms share ``max_search``.
    """
    translator = Translator(field_map, max_string=max_string, max_search=max_search, text_length=text_length)
    result = [translator.order_term(term) for term in terms]
    has_id = any(
        isinstance(term.expression, Property) and translator.field_map.resolve(term.expression.name).attname == "id"
        for term in terms
    )
    if not has_id:
        result.append("id")
    return result
