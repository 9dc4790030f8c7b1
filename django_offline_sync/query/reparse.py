"""``parse_filter`` without lexing and parsing again a text that differs from one parsed before
only inside its quoted literals.

A device pulls page after page with ``(updatedAt ge datetimeoffset'…')``: the same text but for
the timestamp. Lexing and parsing it was about a twentieth of such a request's CPU. So the tree
is kept per *text shape*: the text with the bodies of its quoted literals (``'…'``, and the
``'…'`` of ``datetimeoffset'…'`` and the other typed forms) lifted out. A text of a known shape
gets the kept tree with each quoted literal read afresh from its body, by the lexer's own
functions, and every position moved by how much the bodies before it grew or shrank: the tree
``parse_filter`` builds for it, node for node.

That holds because the lexer and the parser treat a quoted literal as one token whatever its
body holds: the lexer's reading of the text outside the quotes never looks inside them (no
pattern of it matches a quote), and the parser looks at a literal's kind, never its value,
except where it builds a new literal from one (``cast``). So a shape is kept only when each
quoted literal the lexer made is in the tree as it came from the lexer (the same object), and
a body that could make the lexer fail (a bad ``datetimeoffset``, a forbidden character) or a
text over ``MAX_FILTER_LENGTH`` goes the ordinary way, which raises its error exactly as before.
Nothing is kept for a text that does not parse. Translation (``translator``) still runs on
every tree, so every error it gives is raised as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from django.core.signals import setting_changed

from ..wire import UNSTORABLE_TEXT
from .errors import ODataSyntaxError
from .lexer import Token, read_quoted, typed_literal
from .lru import LRUCache
from .nodes import BinaryOp, BoolOp, Call, In, Literal, Node, Not, Property, walk
from .parser import parse_filter_tokens

__all__ = ["filter_tree_cache", "parse_filter_reusing"]

_KNOWN_NODES: Final = (Literal, Property, Not, BinaryOp, BoolOp, Call, In)


@dataclass(frozen=True, slots=True)
class _Quoted:
    """One quoted literal of a kept tree."""

    literal: Literal  # as the tree holds it
    start: int  # where its opening quote was in the kept text
    length: int  # of its quoted part, quotes included, in the kept text
    prefix: str | None  # the lower-cased typed prefix (``datetimeoffset``), or None for a string
    prefix_length: int


@dataclass(frozen=True, slots=True)
class _Kept:
    node: Node
    quoted: tuple[_Quoted, ...]


def _split(text: str) -> tuple[tuple[str, ...], list[tuple[int, int, str]]] | None:
    """The text outside the quoted literals and, per quoted literal, (quote position, end, body);
    None where a quote is not closed (the lexer reports it)."""
    outside: list[str] = []
    quoted: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        start = text.find("'", pos)
        if start < 0:
            outside.append(text[pos:])
            return tuple(outside), quoted
        outside.append(text[pos:start])
        try:
            body, end = read_quoted(text, start)
        except ODataSyntaxError:
            return None
        quoted.append((start, end, body))
        pos = end


filter_tree_cache: Final[LRUCache[Hashable, _Kept]] = LRUCache()


def _clear(**kwargs: object) -> None:
    filter_tree_cache.clear()


setting_changed.connect(_clear)


def parse_filter_reusing(text: str, *, max_length: int, max_depth: int, max_nodes: int, size: int) -> Node:
    """``parse_filter(text, …)``, from a kept tree where ``text`` has a known shape; ``size``
    is the most shapes kept (0: parse every text)."""
    # An over-long text is never kept: it goes straight to the parser, which refuses it.
    split = _split(text) if size > 0 and len(text) <= max_length else None
    if split is None:
        return parse_filter_tokens(text, max_length=max_length, max_depth=max_depth, max_nodes=max_nodes)[0]
    outside, bodies = split
    key = (outside, max_depth, max_nodes)
    kept = filter_tree_cache.get(key)
    if kept is not None:
        node = _rebuilt(kept, bodies)
        if node is not None:
            return node
    node, tokens = parse_filter_tokens(text, max_length=max_length, max_depth=max_depth, max_nodes=max_nodes)
    if kept is None:
        entry = _keep(node, tokens, bodies)
        if entry is not None:
            filter_tree_cache.put(key, entry, size)
    return node


def _read(quoted: _Quoted, start: int, body: str) -> Literal:
    """The literal the lexer reads from ``body`` quoted at ``start`` (``ODataSyntaxError`` if none)."""
    if quoted.prefix is None:
        return Literal(position=start, kind="string", value=body)
    return typed_literal(quoted.prefix, body, start - quoted.prefix_length, start + 1)


def _keep(node: Node, tokens: list[Token], bodies: list[tuple[int, int, str]]) -> _Kept | None:
    """What a text of this shape needs to be rebuilt from ``node``, or None if it cannot be."""
    literal_tokens = [t for t in tokens if t.kind == "literal" and "'" in t.text]
    if len(literal_tokens) != len(bodies):
        return None
    in_tree: dict[int, int] = {}
    for current in walk(node):
        if not isinstance(current, _KNOWN_NODES):
            return None
        in_tree[id(current)] = in_tree.get(id(current), 0) + 1
    quoted: list[_Quoted] = []
    for token, (start, end, body) in zip(literal_tokens, bodies, strict=True):
        literal = token.literal
        prefix_length = token.text.index("'")
        if literal is None or in_tree.get(id(literal)) != 1 or token.position + prefix_length != start:
            return None
        prefix = token.text[:prefix_length].lower() if prefix_length else None
        entry = _Quoted(literal, start, end - start, prefix, prefix_length)
        try:
            if _read(entry, start, body) != literal:  # the lexer read it some other way
                return None
        except ODataSyntaxError:  # pragma: no cover - the lexer read it
            return None
        quoted.append(entry)
    return _Kept(node, tuple(quoted))


def _rebuilt(kept: _Kept, bodies: list[tuple[int, int, str]]) -> Node | None:
    """The tree of the text whose quoted literals are ``bodies``; None where the lexer would
    refuse one of them (the ordinary parse then raises the error)."""
    if not bodies:  # the very text kept (trees are immutable, so it is shared)
        return kept.node
    fresh: dict[int, Literal] = {}
    starts: list[int] = []
    shifts: list[int] = [0]
    for quoted, (start, end, body) in zip(kept.quoted, bodies, strict=True):
        if UNSTORABLE_TEXT.search(body):
            return None
        try:
            literal = _read(quoted, start, body)
        except ODataSyntaxError:
            return None
        fresh[id(quoted.literal)] = literal
        starts.append(quoted.start)
        shifts.append(shifts[-1] + (end - start) - quoted.length)
    if shifts[-1] == 0 and all(q.start == s for q, (s, _, _) in zip(kept.quoted, bodies, strict=True)):
        return _moved(kept.node, fresh, None)
    return _moved(kept.node, fresh, (starts, shifts))


def _moved(node: Node, fresh: dict[int, Literal], shift: tuple[list[int], list[int]] | None) -> Node:
    """``node`` with the literals in ``fresh`` replaced and every other position moved past the
    bodies that changed length before it (a position is never inside a body)."""
    replaced = fresh.get(id(node))
    if replaced is not None:
        return replaced
    position = node.position
    if shift is not None:
        starts, shifts = shift
        position += shifts[bisect_left(starts, position)]
    if isinstance(node, Literal):
        return node if position == node.position else Literal(
            position=position, kind=node.kind, value=node.value, text=node.text
        )
    if isinstance(node, Property):
        return node if position == node.position else Property(position=position, name=node.name)
    if isinstance(node, Not):
        return Not(position=position, operand=_moved(node.operand, fresh, shift))
    if isinstance(node, BinaryOp):
        return BinaryOp(
            position=position, op=node.op, left=_moved(node.left, fresh, shift), right=_moved(node.right, fresh, shift)
        )
    if isinstance(node, BoolOp):
        return BoolOp(position=position, op=node.op, operands=tuple(_moved(o, fresh, shift) for o in node.operands))
    if isinstance(node, Call):
        return Call(position=position, name=node.name, args=tuple(_moved(a, fresh, shift) for a in node.args))
    assert isinstance(node, In)  # _keep admits only these kinds
    items = tuple(_moved(i, fresh, shift) for i in node.items)
    return In(position=position, operand=_moved(node.operand, fresh, shift), items=items)  # type: ignore[arg-type]
