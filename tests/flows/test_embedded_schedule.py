"""Embedded mode's schedule: which calendar jobs a restart makes up, once, from the marks in the database."""

from __future__ import annotations

import asyncio

import pendulum
import pytest

from config.settings import SchedulerGroup
from flows.schedule import FlowScheduler, missed, scheduled_jobs
from store.schedule_marks import mark_finished, mark_started, read_marks
from store.tables import ScheduleMarkRow

SHANGHAI = "Asia/Shanghai"
NOW = pendulum.datetime(2026, 11, 23, 10, 0, tz=SHANGHAI)  # a Monday, after the 08:30 digest and 09:00 report
JOBS = {job.id: job for job in scheduled_jobs(SchedulerGroup(), timezone=SHANGHAI)}


def _mark(job: str, started: pendulum.DateTime, outcome: str = "completed") -> ScheduleMarkRow:
    return ScheduleMarkRow(job=job, last_started_at=started.in_timezone("UTC"), last_outcome=outcome)


def test_a_job_that_never_ran_here_misses_nothing():
    assert not missed(JOBS["digest"], None, now=NOW)


def test_a_digest_run_in_this_quarter_hour_is_not_made_up():
    # the digest job looks every 15 minutes for the people whose chosen time has come
    assert not missed(JOBS["digest"], _mark("digest", NOW.replace(second=2)), now=NOW.add(minutes=10))


def test_a_digest_quarter_hour_that_passed_while_down_is_made_up():
    assert missed(JOBS["digest"], _mark("digest", NOW.replace(hour=8, minute=30, second=2)), now=NOW)


def test_three_days_down_make_up_one_digest():
    assert missed(JOBS["digest"], _mark("digest", NOW.subtract(days=3)), now=NOW)


def test_the_weekly_report_is_made_up_only_when_a_monday_passed():
    assert missed(JOBS["report"], _mark("report", NOW.subtract(weeks=1)), now=NOW)
    sunday = NOW.subtract(days=1)
    assert not missed(JOBS["report"], _mark("report", NOW.subtract(days=6)), now=sunday)


def test_a_run_cut_off_by_a_kill_is_made_up():
    assert missed(JOBS["housekeeping"], _mark("housekeeping", NOW.subtract(minutes=5), "running"), now=NOW)


def test_interval_jobs_are_never_made_up_they_run_at_start():
    assert not missed(JOBS["sweep"], _mark("sweep", NOW.subtract(days=30)), now=NOW)


async def test_marks_record_the_start_and_the_outcome(runtime):
    async with runtime.write() as session:
        await mark_started(session, "digest", now=NOW)
    async with runtime.read_sessions() as session:
        assert (await read_marks(session))["digest"].last_outcome == "running"
    async with runtime.write() as session:
        await mark_finished(session, "digest", now=NOW.add(seconds=3), ok=False)
    async with runtime.read_sessions() as session:
        mark = (await read_marks(session))["digest"]
    assert mark.last_outcome == "failed"
    assert mark.last_finished_at == NOW.add(seconds=3)


async def test_start_schedules_made_up_jobs_now_and_the_others_at_their_times(runtime):
    async with runtime.write() as session:
        session.add(_mark("report", NOW.subtract(weeks=3)))  # three Mondays missed
        session.add(_mark("digest", NOW))  # this quarter hour's ran
        session.add(_mark("housekeeping", NOW.subtract(hours=7), "running"))  # killed mid-run
    scheduler = FlowScheduler(runtime, SchedulerGroup(sweep_seconds=3600, deliver_seconds=3600))
    caught_up = await scheduler.start(now=NOW, paused=True)  # nothing runs here: the jobs are only looked at
    try:
        assert sorted(caught_up) == ["housekeeping", "report"]
        next_runs = {job.id: job.next_run_time for job in scheduler.scheduler.get_jobs()}
        assert next_runs["report"] == NOW and next_runs["housekeeping"] == NOW
        assert next_runs["materialise"] == NOW  # always once at start
        assert next_runs["sweep"] == NOW and next_runs["deliver"] == NOW
        assert next_runs["digest"] == NOW  # its cron time: every quarter hour, and 10:00 is one
    finally:
        await scheduler.shutdown()
        await asyncio.sleep(0)


@pytest.mark.parametrize("crontab", ["30 8 * *", "61 8 * * *", "every day"])
def test_a_bad_crontab_is_refused_with_the_expected_shape(crontab):
    with pytest.raises(ValueError, match="expected a crontab of 5 fields"):
        SchedulerGroup(digest_cron=crontab)
