"""How a flow finds the database and policies.

The entry point (`duly run`, a test) builds the Runtime once and calls `use(runtime, delivery)`. A flow run
started by a Prefect worker in a fresh process finds nothing configured and builds one from the
environment (`DULY_*` settings) on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from notifications.delivery import DeliverySettings
from notifications.smtp import SmtpSettings
from store.runtime import Runtime, build_runtime


@dataclass
class FlowContext:
    runtime: Runtime
    delivery: DeliverySettings


_current: FlowContext | None = None


def use(runtime: Runtime, delivery: DeliverySettings) -> None:
    global _current
    _current = FlowContext(runtime, delivery)


def clear() -> None:
    global _current
    _current = None


async def current() -> FlowContext:
    global _current
    if _current is None:
        settings = Settings()
        _current = FlowContext(await build_runtime(settings), delivery_settings(settings))
    return _current


def delivery_settings(settings: Settings) -> DeliverySettings:
    s, d = settings.smtp, settings.delivery
    smtp = SmtpSettings(host=s.host, port=s.port, security=s.security, username=s.username, password=s.password,
                        timeout_seconds=s.timeout_seconds, sender=s.sender, ca_file=s.ca_file)
    return DeliverySettings(smtp=smtp, email_per_minute=d.email_per_minute,
                            chat_per_hook_per_minute=d.chat_per_hook_per_minute,
                            chat_timeout_seconds=d.chat_timeout_seconds, max_attempts=d.max_attempts)
