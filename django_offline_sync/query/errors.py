"""The positioned error every stage of the OData machinery raises.

It is plain Python so the lexer and parser stay free of Django; ``parse_query`` (and the
filter backend) turn it into the HTTP-level ``ODataError`` naming the query option.
"""

from __future__ import annotations


class ODataSyntaxError(ValueError):
    """A query option value that cannot be accepted.

    ``position`` is the 0-based character offset in the option's value where the problem
    was found (``None`` when it concerns the whole value), ``expected`` a short description
    of what would have been accepted there.
    """

    def __init__(self, message: str, position: int | None = None, expected: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.expected = expected

    def __str__(self) -> str:
        text = self.message
        if self.position is not None:
            text += f" (at position {self.position})"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class ODataTypeError(ODataSyntaxError):
    """A well-formed expression that names an unknown field or mixes incompatible types."""


class ODataLimitError(ODataSyntaxError):
    """An expression longer, deeper or larger than the configured limits."""
