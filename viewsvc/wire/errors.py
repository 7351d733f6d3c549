"""The one error the shared wire code raises: a request field that is malformed."""

from __future__ import annotations

__all__ = ["InvalidArgument"]


class InvalidArgument(ValueError):
    """A malformed request; ``field`` is the request field at fault, the message says what
    to do (a server answers INVALID_ARGUMENT with ``"<field>: <message>"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
