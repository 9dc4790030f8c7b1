"""Turns OData tokens into a syntax tree: ``$filter``, ``$orderby`` and ``$select`` values.

Operator precedence (loosest first): ``or``, ``and``, ``eq ne``, ``gt ge lt le in``,
``add sub``, ``mul div mod``, ``not``. This is an operator-precedence parser over explicit
stacks rather than one-function-per-rule recursive descent, because the .NET clients wrap
every binary operator in parentheses (``((a or b) or c) or …`` for a list of ids), so
lexical nesting grows with the query and a recursive parser would hit Python's recursion
limit long before ``MAX_FILTER_LENGTH``. Nesting depth is then checked on the tree, where
``and``/``or`` chains are flat. No Django here.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from dataclasses import dataclass, field

from .errors import ODataLimitError, ODataSyntaxError
from .lexer import SYMBOL_OPERATORS, UTC, Token, parse_datetime, parse_time, tokenize
from .nodes import BinaryOp, BoolOp, Call, In, Literal, Node, Not, OrderTerm, Property, depth

DEFAULT_MAX_LENGTH = 4096
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_NODES = 512

_BINARY_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "eq": 3, "ne": 3,
    "gt": 4, "ge": 4, "lt": 4, "le": 4, "in": 4,
    "add": 5, "sub": 5,
    "mul": 6, "div": 6, "mod": 6,
}
_NOT_PRECEDENCE = 7

# name → (minimum, maximum) number of arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "substringof": (2, 2), "contains": (2, 2), "startswith": (2, 2), "endswith": (2, 2),
    "indexof": (2, 2), "concat": (2, 16), "replace": (3, 3), "substring": (2, 3),
    "tolower": (1, 1), "toupper": (1, 1), "length": (1, 1), "trim": (1, 1),
    "day": (1, 1), "month": (1, 1), "year": (1, 1), "hour": (1, 1), "minute": (1, 1), "second": (1, 1),
    "floor": (1, 1), "ceiling": (1, 1), "round": (1, 1),
    "cast": (2, 2),
}

# cast(…, Edm.X) target → literal kind
EDM_TYPES = {
    "edm.datetimeoffset": "datetime", "edm.datetime": "datetime", "edm.date": "date",
    "edm.timeofday": "time", "edm.guid": "guid", "edm.string": "string", "edm.boolean": "bool",
    "edm.int16": "int", "edm.int32": "int", "edm.int64": "int", "edm.byte": "int", "edm.sbyte": "int",
    "edm.decimal": "decimal", "edm.double": "float", "edm.single": "float",
}

# The range of each integer Edm type a cast(…) may name.
_EDM_INT_RANGES = {
    "edm.byte": (0, 2**8 - 1), "edm.sbyte": (-(2**7), 2**7 - 1), "edm.int16": (-(2**15), 2**15 - 1),
    "edm.int32": (-(2**31), 2**31 - 1), "edm.int64": (-(2**63), 2**63 - 1),
}

_SELECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL_WORDS = {"null": ("null", None), "true": ("bool", True), "false": ("bool", False)}


@dataclass(slots=True)
class _Frame:
    kind: str  # "op", "group", "call", "list"
    name: str
    position: int
    precedence: int = 0
    args: list[Node] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Items:
    """The parenthesized right-hand side of ``in`` while it waits for its operator."""

    position: int
    items: tuple[Node, ...]


_Operand = Node | _Items


class Parser:
    """One option value's tokens; ``expression()`` reads one expression from them."""

    def __init__(self, text: str, *, max_length: int, max_depth: int, max_nodes: int) -> None:
        if len(text) > max_length:
            raise ODataLimitError(
                f"The expression is longer than {max_length} characters", max_length, "a shorter expression"
            )
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.nodes = 0

    # -- token access ---------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def count(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ODataLimitError(
                f"The expression has more than {self.max_nodes} nodes", node.position, "a smaller expression"
            )
        return node

    # -- expressions ----------------------------------------------------------------------

    def expression(self, *, ordering: bool = False) -> Node:
        """Read one expression; with ``ordering``, stop before a top-level ``,``/``asc``/``desc``."""
        operands: list[_Operand] = []
        frames: list[_Frame] = []
        expect_operand = True
        while True:
            token = self.peek()
            if expect_operand:
                expect_operand = self._operand(token, operands, frames)
                continue
            lowered = _operator_name(token)
            if lowered in _BINARY_PRECEDENCE:
                precedence = _BINARY_PRECEDENCE[lowered]
                self._reduce(operands, frames, precedence)
                frames.append(_Frame("op", lowered, token.position, precedence))
                self.advance()
                expect_operand = True
                if lowered == "in":
                    expect_operand = self._open_list(frames, operands)
            elif token.kind == ",":
                self._reduce(operands, frames, 0)
                if frames and frames[-1].kind in ("call", "list"):
                    frames[-1].args.append(self._node(operands.pop()))
                    self.advance()
                    expect_operand = True
                elif ordering and not frames:
                    return self._finish(operands, frames)
                else:
                    raise ODataSyntaxError("Unexpected ','", token.position, "an operator or the end of the expression")
            elif token.kind == ")":
                self._reduce(operands, frames, 0)
                if not frames:
                    raise ODataSyntaxError("Unmatched ')'", token.position, "an operator or the end of the expression")
                self.advance()
                self._close(frames.pop(), operands)
            elif token.kind == "eof" or (ordering and lowered in ("asc", "desc")):
                return self._finish(operands, frames)
            elif token.kind == "/":
                raise ODataSyntaxError("Navigation properties are not supported", token.position, "an operator")
            else:
                open_frames = any(frame.kind != "op" for frame in frames)
                expected = "an operator, ',' or ')'" if open_frames else "an operator or the end of the expression"
                raise ODataSyntaxError(f"Unexpected {_describe(token)}", token.position, expected)

    def _operand(self, token: Token, operands: list[_Operand], frames: list[_Frame]) -> bool:
        """Consume an operand (or a prefix); return whether an operand is still expected."""
        if token.kind == "literal":
            assert token.literal is not None
            operands.append(self.count(token.literal))
            self.advance()
            return False
        if token.kind == "(":
            frames.append(_Frame("group", "(", token.position))
            self.advance()
            return True
        if token.kind != "ident":
            raise ODataSyntaxError(
                f"Unexpected {_describe(token)}", token.position, "a property, literal, function call or '('"
            )
        lowered = token.text.lower()
        following = self.peek(1)
        if lowered == "not":
            frames.append(_Frame("op", "not", token.position, _NOT_PRECEDENCE))
            self.advance()
            return True
        if following.kind == "(":
            if lowered not in FUNCTIONS:
                raise ODataSyntaxError(
                    f"Unknown function {token.text!r}", token.position, "one of " + ", ".join(sorted(FUNCTIONS))
                )
            self.advance()
            self.advance()
            frames.append(_Frame("call", lowered, token.position))
            if self.peek().kind == ")":
                self.advance()
                self._close(frames.pop(), operands, empty=True)
                return False
            return True
        if lowered in _LITERAL_WORDS:
            kind, value = _LITERAL_WORDS[lowered]
            operands.append(self.count(Literal(position=token.position, kind=kind, value=value, text=lowered)))
        else:
            operands.append(self.count(Property(position=token.position, name=token.text)))
        self.advance()
        if self.peek().kind == "/":
            raise ODataSyntaxError("Navigation properties are not supported", self.peek().position, "an operator")
        return False

    def _open_list(self, frames: list[_Frame], operands: list[_Operand]) -> bool:
        token = self.peek()
        if token.kind != "(":
            raise ODataSyntaxError("'in' needs a parenthesized list", token.position, "'('")
        self.advance()
        frames.append(_Frame("list", "in", token.position))
        if self.peek().kind == ")":
            self.advance()
            self._close(frames.pop(), operands, empty=True)
            return False
        return True

    def _close(self, frame: _Frame, operands: list[_Operand], *, empty: bool = False) -> None:
        if frame.kind == "group":
            return
        if not empty:
            frame.args.append(self._node(operands.pop()))
        if frame.kind == "list":
            operands.append(_Items(frame.position, tuple(frame.args)))
        else:
            operands.append(self._call(frame))

    def _reduce(self, operands: list[_Operand], frames: list[_Frame], precedence: int) -> None:
        """Apply stacked operators that bind at least as tightly as ``precedence``."""
        while frames and frames[-1].kind == "op" and frames[-1].precedence >= max(precedence, 1):
            # A binary operator of equal precedence is left-associative, but a pending unary
            # ``not`` must not swallow an operator that binds less tightly than itself only.
            frame = frames.pop()
            if frame.name == "not":
                operands.append(self.count(Not(position=frame.position, operand=self._node(operands.pop()))))
                continue
            right = operands.pop()
            left = self._node(operands.pop())
            operands.append(self._binary(frame, left, right))

    def _finish(self, operands: list[_Operand], frames: list[_Frame]) -> Node:
        self._reduce(operands, frames, 0)
        if frames:
            opening = frames[-1]
            raise ODataSyntaxError(
                f"'(' at position {opening.position} is never closed", self.peek().position, "')'"
            )
        node = self._node(operands.pop())
        level, deepest = depth(node)
        if level > self.max_depth:
            raise ODataLimitError(
                f"The expression is nested more than {self.max_depth} levels deep", deepest.position,
                "a less deeply nested expression",
            )
        return node

    def _node(self, operand: _Operand) -> Node:
        if isinstance(operand, _Items):
            raise ODataSyntaxError("A parenthesized list is only allowed after 'in'", operand.position, "an expression")
        return operand

    def _binary(self, frame: _Frame, left: Node, right: _Operand) -> Node:
        if frame.name == "in":
            if not isinstance(right, _Items):
                raise ODataSyntaxError("'in' needs a parenthesized list", frame.position, "'('")
            items: list[Literal] = []
            for item in right.items:
                if not isinstance(item, Literal):
                    raise ODataSyntaxError("The items of an 'in' list must be literals", item.position, "a literal")
                items.append(item)
            return self.count(In(position=frame.position, operand=left, items=tuple(items)))
        right_node = self._node(right)
        if frame.name in ("and", "or"):
            parts: list[Node] = []
            for side in (left, right_node):
                if isinstance(side, BoolOp) and side.op == frame.name:
                    parts.extend(side.operands)
                else:
                    parts.append(side)
            position = left.position if isinstance(left, BoolOp) and left.op == frame.name else frame.position
            return self.count(BoolOp(position=position, op=frame.name, operands=tuple(parts)))
        return self.count(BinaryOp(position=frame.position, op=frame.name, left=left, right=right_node))

    def _call(self, frame: _Frame) -> Node:
        low, high = FUNCTIONS[frame.name]
        if not low <= len(frame.args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise ODataSyntaxError(
                f"{frame.name}() takes {wanted} argument{'s' if high > 1 else ''}, got {len(frame.args)}",
                frame.position,
                f"{wanted} argument{'s' if high > 1 else ''}",
            )
        if frame.name == "cast":
            return self.count(cast_literal(frame.position, frame.args[0], frame.args[1]))
        return self.count(Call(position=frame.position, name=frame.name, args=tuple(frame.args)))


def _operator_name(token: Token) -> str:
    """The lower-cased name of an identifier, or the operator a comparison symbol stands for."""
    if token.kind == "ident":
        return token.text.lower()
    if token.kind == "op":
        return SYMBOL_OPERATORS[token.text]
    return ""


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "end of expression"
    return f"{token.text!r}"


def cast_literal(position: int, value: Node, target: Node) -> Literal:
    """``cast(literal, Edm.Type)`` folded into a typed literal (what CTK sends for dates and guids)."""
    if not isinstance(target, Property) or target.name.lower() not in EDM_TYPES:
        raise ODataSyntaxError(
            "cast() needs an Edm type as its second argument", target.position,
            "one of " + ", ".join(sorted(t.split(".")[1] for t in EDM_TYPES)),
        )
    if not isinstance(value, Literal):
        raise ODataSyntaxError("cast() is supported on literals only", value.position, "a literal")
    kind = EDM_TYPES[target.name.lower()]
    try:
        converted = convert_literal(value, kind)
    except (ValueError, ArithmeticError, TypeError):
        raise ODataSyntaxError(
            f"Cannot cast this literal to {target.name}", value.position, f"a {kind} value"
        ) from None
    bounds = _EDM_INT_RANGES.get(target.name.lower())
    if bounds is not None and isinstance(converted, int) and not bounds[0] <= converted <= bounds[1]:
        raise ODataSyntaxError(
            f"The value is out of range for {target.name}", value.position,
            f"an integer from {bounds[0]} to {bounds[1]}",
        )
    return Literal(position=value.position, kind=kind, value=converted, text=value.text)  # type: ignore[arg-type]


def convert_literal(literal: Literal, kind: str) -> object:
    """The value of ``literal`` as a literal of ``kind``; raise ``ValueError`` if it has none."""
    value = literal.value
    if literal.kind == "null":
        return None
    if literal.kind == kind:
        return value
    if kind == "string":
        return literal.text if literal.kind in ("int", "float", "decimal") else str(value)
    if literal.kind == "string":
        assert isinstance(value, str)
        if kind == "datetime":
            return parse_datetime(value)
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "time":
            return parse_time(value)
        if kind == "guid":
            return uuid.UUID(value)
    if kind == "datetime" and literal.kind == "date":
        assert isinstance(value, dt.date)
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if kind == "date" and literal.kind == "datetime":
        assert isinstance(value, dt.datetime)
        if value.timetz().replace(tzinfo=None) != dt.time(0):
            raise ValueError("not midnight")
        return value.date()
    if kind in ("int", "float", "decimal") and literal.kind in ("int", "float", "decimal"):
        exact = decimal.Decimal(literal.text)
        if kind == "int":
            if exact != exact.to_integral_value():
                raise ValueError("not an integer")
            return int(exact)
        return exact if kind == "decimal" else float(exact)
    raise ValueError(f"cannot convert {literal.kind} to {kind}")


# -- entry points --------------------------------------------------------------------------


def parse_filter(
    text: str,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Node:
    """The syntax tree of a ``$filter`` value; raise ``ODataSyntaxError`` (or a subclass)."""
    return parse_filter_tokens(text, max_length=max_length, max_depth=max_depth, max_nodes=max_nodes)[0]


def parse_filter_tokens(
    text: str, *, max_length: int, max_depth: int, max_nodes: int
) -> tuple[Node, list[Token]]:
    """``parse_filter``, and the tokens it read (``query.reparse`` relates the two)."""
    parser = Parser(text, max_length=max_length, max_depth=max_depth, max_nodes=max_nodes)
    if parser.peek().kind == "eof":
        raise ODataSyntaxError("The expression is empty", 0, "an expression")
    return parser.expression(), parser.tokens


def parse_orderby(
    text: str,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> tuple[OrderTerm, ...]:
    """The keys of an ``$orderby`` value: ``expr [asc|desc], …``."""
    parser = Parser(text, max_length=max_length, max_depth=max_depth, max_nodes=max_nodes)
    terms: list[OrderTerm] = []
    while True:
        start = parser.peek()
        if start.kind == "eof":
            raise ODataSyntaxError("Expected an ordering key", start.position, "a property name")
        node = parser.expression(ordering=True)
        descending = False
        token = parser.peek()
        if token.kind == "ident" and token.text.lower() in ("asc", "desc"):
            descending = token.text.lower() == "desc"
            parser.advance()
            token = parser.peek()
        terms.append(OrderTerm(expression=node, descending=descending, position=start.position))
        if token.kind == "eof":
            return tuple(terms)
        if token.kind != ",":
            raise ODataSyntaxError(f"Unexpected {_describe(token)}", token.position, "',' or the end of $orderby")
        parser.advance()


def parse_select(text: str) -> tuple[str, ...]:
    """The property names of a ``$select`` value (``*`` stands for all of them)."""
    names: list[str] = []
    position = 0
    for part in text.split(","):
        name = part.strip()
        offset = position + (len(part) - len(part.lstrip()))
        if name != "*" and not _SELECT_NAME.fullmatch(name):
            raise ODataSyntaxError(
                f"Invalid property name {name!r}" if name else "Empty property name", offset, "a property name or *"
            )
        names.append(name)
        position += len(part) + 1
    return tuple(names)
