"""The one place that reads the clock. The core takes `now` as an argument; the shell asks here."""

from __future__ import annotations

import pendulum


def now() -> pendulum.DateTime:
    """The current instant in UTC."""
    return pendulum.now("UTC")
