"""A pure-Python evaluator of filter trees: the reference the ORM translation is checked against.

It implements the semantics the translator's docstring states (C# null semantics, code-point
string comparison, ASCII-only case folding, truncating integer division, null on division by
zero, decimal arithmetic in double precision) directly on row dicts, with no SQL involved.
"""

from __future__ import annotations

import datetime as dt
import math
import string
from dataclasses import dataclass
from typing import Any

from django_offline_sync.query.coercion import NUMERIC, coerce_literal
from django_offline_sync.query.fields import FieldMap
from django_offline_sync.query.nodes import (
    ARITHMETIC_OPS,
    COMPARISON_OPS,
    BinaryOp,
    BoolOp,
    Call,
    In,
    Literal,
    Node,
    Not,
    OrderTerm,
    Property,
)

UTC = dt.UTC
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
PREDICATES = ("contains", "substringof", "startswith", "endswith")


@dataclass(frozen=True)
class Val:
    value: Any
    type: str
    literal: Literal | None = None


class Evaluator:
    def __init__(self, field_map: FieldMap) -> None:
        self.field_map = field_map

    def matches(self, node: Node, row: dict[str, Any]) -> bool:
        return self.predicate(node, row)

    # -- predicates ---------------------------------------------------------------------

    def predicate(self, node: Node, row: dict[str, Any]) -> bool:
        if isinstance(node, BoolOp):
            results = [self.predicate(operand, row) for operand in node.operands]
            return all(results) if node.op == "and" else any(results)
        if isinstance(node, Not):
            return not self.predicate(node.operand, row)
        if isinstance(node, BinaryOp) and node.op in COMPARISON_OPS:
            return self.compare(node, row)
        if isinstance(node, In):
            return self.in_list(node, row)
        if isinstance(node, Call) and node.name in PREDICATES:
            args = [self.value(arg, row, "string").value for arg in node.args]
            if node.name == "substringof":
                args.reverse()
            text, part = args
            if text is None or part is None:
                return False
            if node.name in ("contains", "substringof"):
                return part in text
            return text.startswith(part) if node.name == "startswith" else text.endswith(part)
        val = self.value(node, row)
        assert val.type == "bool"
        return val.value is True

    def compare(self, node: BinaryOp, row: dict[str, Any]) -> bool:
        left, right = self.value(node.left, row), self.value(node.right, row)
        if left.type == "null" or right.type == "null":
            if left.type == right.type:
                return node.op == "eq"
            other = right if left.type == "null" else left
            if node.op not in ("eq", "ne"):
                return False
            return (other.value is None) == (node.op == "eq")
        left, right = self.unify(left, right)
        a, b = left.value, right.value
        if node.op in ("eq", "ne"):
            equal = (a is None and b is None) or (a is not None and b is not None and a == b)
            return equal if node.op == "eq" else not equal
        if a is None or b is None:
            return False
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[node.op]

    def in_list(self, node: In, row: dict[str, Any]) -> bool:
        operand = self.value(node.operand, row)
        if operand.literal is not None:
            operand = Val(coerce_literal(operand.literal, operand.type)[0], operand.type)
        values = [coerce_literal(item, operand.type) for item in node.items]
        if operand.value is None:
            return any(value is None for value, _ in values)
        return any(value is not None and value == operand.value for value, _ in values)

    # -- values -------------------------------------------------------------------------

    def unify(self, left: Val, right: Val) -> tuple[Val, Val]:
        if left.literal is not None and right.literal is None:
            return self.bind(left, right.type), right
        if right.literal is not None and left.literal is None:
            return left, self.bind(right, left.type)
        if left.literal is not None and right.literal is not None:
            kind = left.type if left.type == right.type else _join(left.type, right.type)
            return self.bind(left, kind), self.bind(right, kind)
        if left.type == right.type:
            return left, right
        kind = _join(left.type, right.type)
        if kind == "float":
            return _float(left), _float(right)
        return left, right

    def bind(self, val: Val, kind: str) -> Val:
        if val.literal is None:
            return val
        return Val(coerce_literal(val.literal, kind)[0], kind)

    def value(self, node: Node, row: dict[str, Any], hint: str | None = None) -> Val:
        if isinstance(node, Literal):
            val = Val(node.value, node.kind, node)
            return self.bind(val, hint) if hint else val
        if isinstance(node, Property):
            info = self.field_map.resolve(node.name)
            value = row[info.attname]
            if info.type == "datetime" and value is not None:
                value = value.astimezone(UTC)
            return Val(value, info.type)
        if isinstance(node, BinaryOp) and node.op in ARITHMETIC_OPS:
            return self.arithmetic(node, row)
        if isinstance(node, Call) and node.name not in PREDICATES:
            return self.call(node, row)
        return Val(self.predicate(node, row), "bool")

    def arithmetic(self, node: BinaryOp, row: dict[str, Any]) -> Val:
        left, right = self.value(node.left, row), self.value(node.right, row)
        if left.type == "null" or right.type == "null":
            return Val(None, "int" if "int" in (left.type, right.type) else "float")
        if left.type == "int" and right.type == "int":
            a, b = self.bind(left, "int").value, self.bind(right, "int").value
            if a is None or b is None:
                return Val(None, "int")
            if node.op in ("div", "mod"):
                if b == 0:
                    return Val(None, "int")
                quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
                return Val(quotient if node.op == "div" else a - b * quotient, "int")
            return Val({"add": a + b, "sub": a - b, "mul": a * b}[node.op], "int")
        a, b = _float(self.bind(left, "float") if left.literal else left).value, _float(
            self.bind(right, "float") if right.literal else right
        ).value
        if a is None or b is None:
            return Val(None, "float")
        if node.op == "div":
            return Val(None if b == 0 else a / b, "float")
        return Val({"add": a + b, "sub": a - b, "mul": a * b}[node.op], "float")

    def call(self, node: Call, row: dict[str, Any]) -> Val:
        name = node.name
        if name in ("tolower", "toupper", "trim", "length"):
            text = self.value(node.args[0], row, "string").value
            if text is None:
                return Val(None, "int" if name == "length" else "string")
            if name == "length":
                return Val(len(text), "int")
            if name == "trim":
                return Val(text.strip(" "), "string")
            return Val(text.translate(_LOWER if name == "tolower" else _UPPER), "string")
        if name == "concat":
            parts = [self.value(arg, row, "string").value for arg in node.args]
            return Val("".join(part or "" for part in parts), "string")
        if name == "replace":
            text, old, new = (self.value(arg, row, "string").value for arg in node.args)
            if text is None or old is None or new is None:
                return Val(None, "string")
            return Val(text if old == "" else text.replace(old, new), "string")
        if name == "indexof":
            text, part = (self.value(arg, row, "string").value for arg in node.args)
            if text is None or part is None:
                return Val(None, "int")
            return Val(text.find(part), "int")
        if name == "substring":
            text = self.value(node.args[0], row, "string").value
            start = node.args[1].value  # type: ignore[attr-defined]
            if text is None:
                return Val(None, "string")
            if len(node.args) == 3:
                return Val(text[start : start + node.args[2].value], "string")  # type: ignore[attr-defined]
            return Val(text[start:], "string")
        if name in ("year", "month", "day", "hour", "minute", "second"):
            value = self.value(node.args[0], row).value
            return Val(None if value is None else getattr(value, name), "int")
        if name in ("floor", "ceiling", "round"):
            val = self.value(node.args[0], row)
            if val.type == "int":
                return self.bind(val, "int")
            x = _float(val).value
            if x is None:
                return Val(None, "float")
            if name == "floor":
                return Val(float(math.floor(x)), "float")
            if name == "ceiling":
                return Val(float(math.ceil(x)), "float")
            return Val(-float(math.floor(-x + 0.5)) if x < 0 else float(math.floor(x + 0.5)), "float")
        raise AssertionError(name)

    # -- ordering -----------------------------------------------------------------------

    def sort(self, rows: list[dict[str, Any]], terms: tuple[OrderTerm, ...]) -> list[dict[str, Any]]:
        """Rows in ``$orderby`` order, nulls low, then by id (stable sorts, last key first)."""
        result = sorted(rows, key=lambda row: row["id"])
        for term in reversed(terms):
            keyed = [(self.value(term.expression, row).value, row) for row in result]
            keyed.sort(key=lambda pair: (False, 0) if pair[0] is None else (True, pair[0]), reverse=term.descending)
            result = [row for _, row in keyed]
        return result


def _join(a: str, b: str) -> str:
    assert a in NUMERIC and b in NUMERIC, (a, b)
    if "float" in (a, b):
        return "float"
    return "decimal" if "decimal" in (a, b) else "int"


def _float(val: Val) -> Val:
    if val.value is None or val.type == "float":
        return Val(val.value, "float")
    if val.literal is not None:
        return Val(coerce_literal(val.literal, "float")[0], "float")
    return Val(float(val.value), "float")
