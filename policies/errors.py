"""Errors of the policy language, each one pointing at a place in a file.

    ValueError
     └── PolicyError              a file (or text) that is not a valid policy: holds every problem found
    Problem                        one problem: file:line:col, message, hint (a value, not an exception)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Problem:
    """One problem in a policy file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        text = f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "severity": self.severity,
                "message": self.message, "hint": self.hint}


class PolicyError(ValueError):
    """A policy file could not be loaded; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))
