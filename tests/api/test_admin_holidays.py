"""Holiday-year upload over HTTP: checked like a file `duly check` reads, stored, and used at once, so
due dates in that year stop being provisional."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.tables import AuditEventRow

pytestmark = pytest.mark.usefixtures("prefect_harness")

YAML = {"Content-Type": "application/yaml"}
LONG_REVIEW = """\
kind: approval
id: long-review
title: 长期评审
timezone: Asia/Shanghai
form:
  note: {type: text, label: 说明}
steps:
  - id: review
    title: 财务总监审批
    approvers: {role: cfo}
    sla: 60 working days
"""


def arrangement(year: int) -> str:
    """A test arrangement (not an official notice): New Year and a week of Spring Festival off."""
    return f"""\
year: {year}
source: test arrangement, not an official notice
published: {year - 1}-11-01
holidays:
  - name: 元旦
    days_off: [{year}-01-01, {year}-01-03]
    makeup_workdays: []
  - name: 春节
    days_off: [{year}-02-06, {year}-02-14]
    makeup_workdays: []
"""


def put_year(client, year: int, text: str):
    return client.put(f"/api/holidays/{year}", content=text.encode("utf-8"), headers=YAML)


def file_long_review(server) -> dict:
    with server.client("huang.lei") as client:
        answer = client.post("/api/requests", json={"policy": "long-review", "form": {"note": "年度评审"}})
    assert answer.status_code == 201, answer.text
    return answer.json()["steps"][0]


async def test_an_uploaded_year_turns_its_due_dates_from_provisional_to_final(live_server, runtime):
    with live_server.client("admin") as admin:
        assert admin.post("/api/policies", content=LONG_REVIEW.encode(), headers=YAML).status_code == 201
    before = file_long_review(live_server)  # 60 working days from today end in a year not yet published
    assert before["provisional"] is True
    year = int(before["due_at"][:4])

    with live_server.client("admin") as admin:
        answer = put_year(admin, year, arrangement(year))
        assert answer.status_code == 201, answer.text
        listing = admin.get("/api/holidays").json()
        again = put_year(admin, year, arrangement(year))
    after = file_long_review(live_server)

    assert after["provisional"] is False
    assert after["due_at"] > before["due_at"]  # the days off are not counted any more
    assert before["provisional"] is True  # filed before: not recomputed (next issue)
    uploaded = next(y for y in listing["items"] if y["year"] == year)
    assert (uploaded["source"], uploaded["uploaded_by"], uploaded["overrides_shipped"]) == ("uploaded", "admin", False)
    assert [y["source"] for y in listing["items"] if y["year"] in (2025, 2026)] == ["shipped", "shipped"]
    assert again.status_code == 200  # a second upload of the year replaces the first
    async with runtime.sessions() as session:
        events = list((await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "holiday_year.upload"))).scalars())
    assert [(e.subject_id, e.actor_id) for e in events] == [(str(year), "admin")] * 2
    assert events[0].data["before"] is None and events[1].data["before"]["source"] == "uploaded"


def test_a_shipped_year_can_be_read_and_overridden(live_server):
    with live_server.client("huang.lei") as staff:
        shipped = staff.get("/api/holidays/2026").json()
        assert staff.get("/api/holidays/2099").status_code == 404
    assert shipped["source"] == "shipped"
    assert "国庆节" in shipped["text"]
    corrected = shipped["text"].replace("# Official", "# Corrected copy of the official")
    with live_server.client("admin") as admin:
        answer = put_year(admin, 2026, corrected)
        assert answer.status_code == 201, answer.text
        read = admin.get("/api/holidays/2026").json()
    assert (read["source"], read["overrides_shipped"], read["text"]) == ("uploaded", True, corrected)


def test_a_bad_year_is_refused_with_every_problem_located(live_server):
    text = arrangement(2027).replace("makeup_workdays: []\n  - name: 春节", "makeup_workdays: [2027-01-04]\n"
                                     "  - name: 春节").replace("[2027-02-06, 2027-02-14]", "[2028-02-06, 2028-02-14]")
    with live_server.client("admin") as admin:
        bad = put_year(admin, 2027, text)
        wrong_year = put_year(admin, 2028, arrangement(2027))
        not_yaml = put_year(admin, 2027, "year: [2027\n")
        listing = admin.get("/api/holidays").json()
    assert bad.status_code == 422
    assert bad.json()["error"]["problems"] == [
        {"line": 7, "column": 23, "severity": "error", "message": "holidays[0].makeup_workdays[0]: 2027-01-04 is a "
         "Monday; a make-up working day (调休上班) must be a Saturday or Sunday"},
        {"line": 9, "column": 16, "severity": "error",
         "message": "holidays[1].days_off[0]: days off 2028-02-06 … 2028-02-14 lie outside 2027, "
                    "the year of this notice"},
    ]
    assert wrong_year.status_code == 422
    assert wrong_year.json()["error"]["problems"] == [
        {"line": 1, "column": 1, "severity": "error",
         "message": "year: the file is named 2028.yaml but holds year 2027"}]
    assert not_yaml.status_code == 422
    assert not_yaml.json()["error"]["problems"][0]["message"].startswith("not valid YAML")
    assert 2027 not in [y["year"] for y in listing["items"]]


def test_a_year_that_claims_a_day_of_another_year_is_refused(live_server):
    """The 2026 file already lists 2026-01-01 … 2026-01-03; a 2025 upload may not list them again."""
    clash = """\
year: 2025
source: test
published: 2024-11-12
holidays:
  - name: 元旦
    days_off: [2025-12-31, 2026-01-01]
"""
    with live_server.client("admin") as admin:
        answer = put_year(admin, 2025, clash)
        still = admin.get("/api/holidays/2025").json()
    assert answer.status_code == 422
    assert "2026-01-01 is listed by both" in answer.json()["error"]["problems"]["body"]
    assert still["source"] == "shipped"
