"""Errors the shell raises when applying a decision; the API maps each to one HTTP status.

    LookupError
     └── NotFoundError        404: no such object, or not one the caller may see
    PermissionError
     └── ForbiddenError       403: the caller sees the object but may not do this
    RuntimeError
     └── ConflictError        409: someone else changed it first (compare-and-set lost)
    ValueError
     └── InvalidInputError    422: the input breaks a rule; `problems` says which
"""

from __future__ import annotations


class NotFoundError(LookupError):
    """No such object, or not one the caller may see."""


class ForbiddenError(PermissionError):
    """The caller may see the object but may not do this to it."""


class ConflictError(RuntimeError):
    """The object changed under the caller (another decision won)."""


class InvalidInputError(ValueError):
    """Input that breaks a rule; `problems` maps a field to its message."""

    def __init__(self, message: str, problems: dict[str, str] | None = None):
        self.problems = problems or {}
        super().__init__(message)
