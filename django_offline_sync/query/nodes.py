"""The immutable syntax tree the parser builds and the translator and evaluators walk.

Every node carries the 0-based ``position`` of the token it started from, so later stages
can point at the offending spot. ``and``/``or`` chains are flattened into one ``BoolOp``
(the operators are associative), which keeps long client-built ``or`` lists shallow.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# Literal kinds. ``float`` and ``decimal`` keep their source text so the translator can
# coerce them exactly to the column they meet.
LITERAL_KINDS = (
    "null", "bool", "int", "float", "decimal", "string",
    "datetime", "date", "time", "guid", "binary",
)

LiteralValue = (
    None | bool | int | float | decimal.Decimal | str | dt.datetime | dt.date | dt.time | uuid.UUID | bytes
)

COMPARISON_OPS = ("eq", "ne", "gt", "ge", "lt", "le")
ARITHMETIC_OPS = ("add", "sub", "mul", "div", "mod")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    position: int

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Node):
    kind: str
    value: LiteralValue
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Property(Node):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Not(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryOp(Node):
    """A comparison (``eq ne gt ge lt le``) or arithmetic (``add sub mul div mod``)."""

    op: str
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True, kw_only=True)
class BoolOp(Node):
    """``and`` or ``or`` over two or more operands."""

    op: str
    operands: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Node):
    """A function call; ``name`` is lower-cased."""

    name: str
    args: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.args


@dataclass(frozen=True, slots=True, kw_only=True)
class In(Node):
    """``operand in (item, …)``; the items are literals."""

    operand: Node
    items: tuple[Literal, ...]

    def children(self) -> tuple[Node, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTerm:
    """One ``$orderby`` key: an expression (usually a ``Property``) and its direction."""

    expression: Node
    descending: bool = False
    position: int = 0


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, without recursion (trees can be wide)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


def depth(node: Node) -> tuple[int, Node]:
    """The depth of the tree and the deepest node, computed without recursion."""
    best, deepest = 0, node
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        if level > best:
            best, deepest = level, current
        stack.extend((child, level + 1) for child in current.children())
    return best, deepest
