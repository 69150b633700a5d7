"""Uploaded holiday years: stored, used by a runtime built later (a restart, another replica)."""

from __future__ import annotations

from datetime import date

import pendulum
import pytest

from store.errors import InvalidInputError
from store.holiday_years import upload_year
from store.runtime import build_runtime

NOW = pendulum.datetime(2026, 11, 20, 10, tz="UTC")
YEAR_2027 = """\
year: 2027
source: test arrangement, not an official notice
published: 2026-11-01
holidays:
  - name: 元旦
    days_off: [2027-01-01, 2027-01-03]
    makeup_workdays: []
"""


async def test_a_runtime_built_after_an_upload_knows_the_year(runtime, settings):
    assert runtime.calendar.is_provisional(date(2027, 1, 1))
    async with runtime.write() as session:
        _, created, calendar = await upload_year(session, year=2027, text=YEAR_2027, directory=settings.holidays_dir,
                                                 actor_id="admin", now=NOW)
    assert created and calendar.is_known(2027) and calendar.is_known(2026)

    restarted = await build_runtime(settings)
    try:
        assert restarted.calendar.is_known(2027)
        assert not restarted.calendar.is_working_day(date(2027, 1, 1))
        assert restarted.calendar.years == (2025, 2026, 2027)
    finally:
        await restarted.close()


async def test_a_refused_upload_stores_nothing(runtime, settings):
    with pytest.raises(InvalidInputError) as refused:
        async with runtime.write() as session:
            await upload_year(session, year=2027, text=YEAR_2027.replace("2027-01-03", "2027-01-4"),
                              directory=settings.holidays_dir, actor_id="admin", now=NOW)
    assert refused.value.problems[0]["line"] == 6  # type: ignore[index]
    restarted = await build_runtime(settings)
    try:
        assert not restarted.calendar.is_known(2027)
    finally:
        await restarted.close()
