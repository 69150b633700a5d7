"""`escalation-report`: per manager, what is overdue in their departments and the trend (store/escalation_report.py);
in the weekly run, each department head's points (积分) of the week just ended too (store/weekly_points.py)."""

from __future__ import annotations

from datetime import datetime

import pendulum
from prefect import flow, get_run_logger

from config import clock
from flows.runtime import current
from store.escalation_report import manager_reports, queue_reports, report_period
from store.weekly_points import queue_weekly_points


@flow(name="escalation-report")
async def escalation_report(now: datetime | None = None, period: str = "week") -> dict[str, int | str]:
    """Queue one report per manager with anything overdue (now or one period ago), once per period (`week`:
    ISO week, `month`: calendar month, in the policies' zone): a re-run in the same period queues nothing new.
    The weekly run also queues each department head's weekly points, once per week (`points_queued`)."""
    ctx = await current()
    now = pendulum.instance(now or clock.now())
    logger = get_run_logger()
    which = report_period(now, tz=ctx.runtime.timezone, kind=period)
    async with ctx.runtime.read_sessions() as session:
        reports = await manager_reports(session, which)
    async with ctx.runtime.write() as session:
        queued = await queue_reports(session, ctx.runtime, reports, now=now)
    for report in reports:
        logger.info("%s %s: %s (%s: %s)", which.key, report.manager.id, report.totals.as_dict(),
                    which.previous_key, report.previous.as_dict())
    points_queued = 0
    if period == "week":
        async with ctx.runtime.write() as session:
            points_queued = await queue_weekly_points(session, ctx.runtime, now=now)
    totals: dict[str, int | str] = {"period": which.key, "managers": len(reports), "queued": queued,
                                    "already_queued": len(reports) - queued, "points_queued": points_queued}
    logger.info("escalation report %s: %s", which.key, totals)
    return totals
