"""Prepare a database for use: migrate, load policies, seed the organisation (and demo passwords)."""

from __future__ import annotations

import functools
from datetime import datetime

from api.auth import hash_password
from config.settings import Settings
from store.db import migrate
from store.organisation import read_organisation_file, seed_organisation
from store.runtime import Runtime, build_runtime

DEMO_PASSWORD = "duly-demo"


@functools.cache
def _demo_password_hash() -> str:
    """Hashed once per process: argon2 is slow on purpose, and every demo account shares the password."""
    return hash_password(DEMO_PASSWORD)


async def prepare(settings: Settings, *, now: datetime) -> Runtime:
    """Migrate to the newest schema, store new policy versions, seed the organisation file's people."""
    migrate(settings.resolved_database_url)
    runtime = await build_runtime(settings, sync_policies_now=now)
    org = read_organisation_file(settings.organisation_file)
    async with runtime.write() as session:
        await seed_organisation(session, org, password_hash=_demo_password_hash() if settings.demo else None)
    return runtime
