"""`housekeeping`: purge ended sessions, old tokens, old failed sign-ins and idempotency keys; check the audit
chain and record the result (store/housekeeping.py). A broken chain fails the run, after it is recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

import pendulum
from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.housekeeping import (
    check_chain,
    purge_api_tokens,
    purge_login_failures,
    purge_sessions,
    record_check,
)
from store.idempotency import purge_idempotency_keys


class AuditChainBroken(RuntimeError):
    """The audit chain does not verify: the run ends Failed so the Prefect UI shows it."""


@flow(name="housekeeping")
async def housekeeping(now: datetime | None = None, full: bool = False,
                       full_every_days: int | None = 7) -> dict[str, int]:
    """Each purge is its own short transaction; the chain is verified in a read session (no write lock held
    meanwhile) and its checkpoint recorded after. `full`: verify from the first event now; otherwise a full
    verification runs when the last one is older than `full_every_days` (None: only on demand)."""
    ctx = await current()
    now = pendulum.instance(now or clock.now())
    logger = get_run_logger()
    settings = ctx.runtime.settings
    idle = timedelta(minutes=settings.session.idle_minutes) if settings is not None else None
    purges = {
        "sessions": lambda s: purge_sessions(s, now=now, idle=idle),
        "api_tokens": lambda s: purge_api_tokens(s, now=now),
        "login_failures": lambda s: purge_login_failures(s, now=now),
        "idempotency_keys": lambda s: purge_idempotency_keys(s, now),
    }
    totals: dict[str, int] = {}
    for name, purge in purges.items():
        async with ctx.runtime.write() as session:
            totals[name] = await purge(session)
        logger.info("purged %d %s", totals[name], name.replace("_", " "))
    async with ctx.runtime.read_sessions() as session:
        check = await check_chain(session, now=now, full=full,
                                  full_every=timedelta(days=full_every_days) if full_every_days else None)
    async with ctx.runtime.write() as session:
        _, told = await record_check(session, check, now=now, public_url=ctx.runtime.public_url,
                                     tz=ctx.runtime.timezone)
    scope = "full" if check.full else f"after checkpoint event {check.start.seq if check.start else 0}"
    totals.update(audit_events_checked=check.events, audit_head_seq=check.head_seq, audit_full=int(check.full))
    if check.problem is not None:
        logger.error("audit chain BROKEN (%s check, head at event %d): %s; %d administrator(s) newly told",
                     scope, check.head_seq, check.problem, told)
        raise AuditChainBroken(check.problem)
    logger.info("audit chain intact up to event %d (%s check, %d events verified)", check.head_seq, scope,
                check.events)
    logger.info("housekeeping: %s", totals)
    return totals
