"""OData query options for the table endpoints: the union of three client dialects.

``lexer`` → ``parser`` → immutable ``nodes`` are plain Python; ``translator`` turns a tree
into ``Q``/``order_by`` against a ``FieldMap``; ``options.parse_query`` reads a whole request.

Why not the ``odata-query`` package: 0.10 is an OData v4 grammar generated with SLY (a
pinned ``sly<0.5`` dependency). It rejects ``datetimeoffset'…'``, ``substringof``,
``cast(…)``, ``2.5M`` and ``guid'…'``; adding them means subclassing SLY's metaclass-built
lexer and LALR grammar, whose token order and rule table are internal. Its Django backend
also maps ``contains``/``startswith`` to ``__contains`` (case-insensitive LIKE on SQLite),
uses SQL three-valued logic for ``ne``/``not``, and reports no positions. Keeping it would
mean replacing its lexer, grammar and Django visitor, so the grammar is written here.
"""

from __future__ import annotations

from .errors import ODataLimitError, ODataSyntaxError, ODataTypeError
from .fields import FieldInfo, FieldMap
from .nodes import Node, OrderTerm
from .options import ODataQuery, evaluation_guard, parse_query, query_param
from .parser import parse_filter, parse_orderby, parse_select
from .translator import translate_filter, translate_orderby

__all__ = [
    "FieldInfo",
    "FieldMap",
    "Node",
    "ODataLimitError",
    "ODataQuery",
    "ODataSyntaxError",
    "ODataTypeError",
    "OrderTerm",
    "evaluation_guard",
    "parse_filter",
    "parse_orderby",
    "parse_query",
    "parse_select",
    "query_param",
    "translate_filter",
    "translate_orderby",
]
