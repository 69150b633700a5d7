"""`duly audit verify` and `duly audit head`: check the hash chain of the audit trail, export its head.

Verification reads on its own connection without taking SQLite's write lock, so a running duly keeps
writing while a long chain is checked; events committed meanwhile are beyond the head it read and are
left for the next run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from store.audit import ChainBreak, export_head, verify_chain
from store.db import async_url, is_sqlite, session_factory
from store.tables import AuditEventRow

PROGRESS_EVERY = 100_000


class AuditCommandError(Exception):
    """The database cannot be read, or an argument is malformed (exit code 2)."""


@dataclass(frozen=True)
class ExpectedHead:
    hash: str
    seq: int | None = None


def parse_expected_head(text: str) -> ExpectedHead:
    """A head exported earlier: its hash, `seq:hash`, or the JSON printed by `duly audit head`."""
    text = text.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            return _expected(str(data["hash"]), int(data["seq"]))
        if ":" in text:
            seq, digest = text.split(":", 1)
            return _expected(digest, int(seq))
        return _expected(text, None)
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditCommandError(f"--expect-head: expected a hash, seq:hash or the JSON of `duly audit head`; "
                                f"{exc}") from None


def _expected(digest: str, seq: int | None) -> ExpectedHead:
    digest = digest.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"a head hash is 64 hexadecimal characters, got {digest[:80]!r}")
    return ExpectedHead(digest, seq)


def _check_database(url: str) -> None:
    if is_sqlite(url):
        path = make_url(url).database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise AuditCommandError(f"no SQLite database at {path!r}")


async def _with_session(url: str, work: Callable[[Any], Any]) -> Any:
    _check_database(url)
    # a plain engine: no BEGIN IMMEDIATE, so reading the chain does not hold SQLite's write lock
    engine = create_async_engine(async_url(url))
    try:
        async with session_factory(engine)() as session:
            return await work(session)
    except DBAPIError as exc:
        raise AuditCommandError(f"cannot read the audit chain (is the database migrated?): {exc.orig}") from None
    except RuntimeError as exc:  # the audit_head row is missing
        raise AuditCommandError(str(exc)) from None
    finally:
        await engine.dispose()


def describe_break(broken: ChainBreak) -> str:
    when = broken.at.isoformat() if broken.at else "time unknown"
    return f"audit chain BROKEN at event {broken.seq} ({when}, {broken.action or 'action unknown'}): {broken.detail}"


def run_verify(url: str, expect_head: str | None = None, progress_to: TextIO = sys.stderr) -> tuple[list[str], int]:
    """The lines to print and the exit code: 0 intact, 1 broken or the exported head missing, 2 not readable."""
    try:
        expected = parse_expected_head(expect_head) if expect_head else None
        return asyncio.run(_with_session(url, lambda session: _verify(session, expected, progress_to)))
    except AuditCommandError as exc:
        return [f"error: {exc}"], 2


async def _verify(session: Any, expected: ExpectedHead | None, progress_to: TextIO) -> tuple[list[str], int]:
    def progress(n: int) -> None:
        print(f"checked {n:,} events…", file=progress_to, flush=True)

    report = await verify_chain(session, progress, every=PROGRESS_EVERY)
    if report.broken is not None:
        return [describe_break(report.broken)], 1
    lines = [f"audit chain intact: {report.events} events, head {report.head_hash}"]
    if expected is None:
        return lines, 0
    found = (await session.execute(select(AuditEventRow.seq).where(AuditEventRow.hash == expected.hash))
             ).scalar_one_or_none()
    if found is None or (expected.seq is not None and found != expected.seq):
        at = f" at event {expected.seq}" if expected.seq is not None else ""
        lines.append(f"exported head {expected.hash}{at} is NOT in the chain: the chain was rewritten since it was "
                     "exported, or this is another database")
        return lines, 1
    lines.append(f"exported head {expected.hash} is still event {found} of the chain")
    return lines, 0


def run_head(url: str) -> tuple[list[str], int]:
    try:
        head = asyncio.run(_with_session(url, export_head))
    except AuditCommandError as exc:
        return [f"error: {exc}"], 2
    return [json.dumps(head)], 0
