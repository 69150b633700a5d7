"""How a flow finds the database and policies.

The entry point (`duly run`, a test) builds the Runtime once and calls `use(runtime, smtp)`. A flow run
started by a Prefect worker in a fresh process finds nothing configured and builds one from the
environment (`DULY_*` settings) on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from notifications.smtp import SmtpSettings
from store.runtime import Runtime, build_runtime


@dataclass
class FlowContext:
    runtime: Runtime
    smtp: SmtpSettings


_current: FlowContext | None = None


def use(runtime: Runtime, smtp: SmtpSettings) -> None:
    global _current
    _current = FlowContext(runtime, smtp)


def clear() -> None:
    global _current
    _current = None


async def current() -> FlowContext:
    global _current
    if _current is None:
        settings = Settings()
        _current = FlowContext(await build_runtime(settings), smtp_settings(settings))
    return _current


def smtp_settings(settings: Settings) -> SmtpSettings:
    s = settings.smtp
    return SmtpSettings(host=s.host, port=s.port, security=s.security, username=s.username, password=s.password,
                        timeout_seconds=s.timeout_seconds, sender=s.sender)
