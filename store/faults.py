"""Named fault points: a test arms one to make a run crash at that point, the way a killed worker would
(between two writes of one batch). Disarmed, a fault point is one dictionary look-up.

Production code calls `fault_point("name")` where a crash is worth proving harmless; only tests arm them.
"""

from __future__ import annotations

_armed: dict[str, int] = {}


class InjectedFault(RuntimeError):
    """The crash a test asked for."""


def arm(name: str, *, after: int = 0) -> None:
    """Crash at the (`after` + 1)-th time `name` is passed."""
    _armed[name] = after


def disarm() -> None:
    _armed.clear()


def fault_point(name: str) -> None:
    remaining = _armed.get(name)
    if remaining is None:
        return
    if remaining > 0:
        _armed[name] = remaining - 1
        return
    del _armed[name]
    raise InjectedFault(f"fault point {name} (armed by a test)")
