"""A person's notification preferences: the language of their messages and pages' lists (zh-CN or en),
whether routine e-mails go at once or wait for the daily digest, and the digest's local time (HH:MM).

Every value is checked here, so a refused change names the field and how to write it, and stores nothing.
A change is audited (`person.preferences`, the fields before and after).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import InvalidInputError
from store.tables import PersonRow

LANGUAGES = ("zh-CN", "en")
NOTIFY_MODES = ("immediate", "digest")
FIELDS = ("lang", "notify_mode", "digest_at")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def preferences_of(person: PersonRow) -> dict[str, str]:
    return {"lang": person.lang, "notify_mode": person.notify_mode, "digest_at": person.digest_at}


def check_preferences(values: Mapping[str, object]) -> dict[str, str]:
    """The problems of the given values, field by field (empty: all good)."""
    problems: dict[str, str] = {}
    for name in values:
        if name not in FIELDS:
            problems[name] = f"unknown preference; allowed: {', '.join(FIELDS)}"
    lang = values.get("lang")
    if "lang" in values and lang not in LANGUAGES:
        problems["lang"] = f"expected one of {', '.join(LANGUAGES)}, got {lang!r}"
    mode = values.get("notify_mode")
    if "notify_mode" in values and mode not in NOTIFY_MODES:
        problems["notify_mode"] = (f"expected immediate (each e-mail as it happens) or digest (routine e-mails "
                                   f"wait for the daily digest), got {mode!r}")
    at = values.get("digest_at")
    if "digest_at" in values and not (isinstance(at, str) and _HH_MM.fullmatch(at)):
        problems["digest_at"] = (f"expected a time of day as HH:MM, two digits each, 00:00 to 23:59 (e.g. 08:30), "
                                 f"got {at!r}")
    return problems


async def update_preferences(session: AsyncSession, person: PersonRow, changes: Mapping[str, object], *,
                             actor_id: str, now: datetime) -> PersonRow:
    """Apply `changes` (a subset of lang, notify_mode, digest_at) to the person; 422 naming every bad field."""
    if not changes:
        raise InvalidInputError("nothing to change: give lang, notify_mode or digest_at",
                                {"body": "give at least one of lang, notify_mode, digest_at"})
    problems = check_preferences(changes)
    if problems:
        raise InvalidInputError("the preferences are not valid", problems)
    row = await session.get(PersonRow, person.id, with_for_update=True)
    assert row is not None  # the caller is signed in, hence exists
    before = preferences_of(row)
    for name, value in changes.items():
        setattr(row, name, value)
    after = preferences_of(row)
    if after != before:
        session.add(row)
        await append_audit(session, at=now, actor_id=actor_id, action="person.preferences", subject_type="person",
                           subject_id=row.id, data={"before": before, "after": after})
    return row
