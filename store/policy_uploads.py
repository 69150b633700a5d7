"""A policy uploaded by an administrator: loaded, linted against the organisation in the database, and
stored as a new version that becomes current (requests already filed keep the version they began on).

The checks are those of `duly check`: the loader's schema problems (file:line:col) and the linter's,
with the organisation the system actually runs (not a profile's sample file). Errors refuse the upload;
warnings are returned with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from policies.errors import PolicyError, Problem
from policies.lint import lint
from policies.loader import LoadedPolicy, load_policy_text
from store.audit import append_audit
from store.errors import InvalidInputError
from store.organisation import load_organisation
from store.registry import UPLOAD_SOURCE, PolicyRegistry
from store.tables import PolicyVersionRow

UPLOAD_FILE = "<upload>"
"""How problems of an uploaded text name their file."""
TITLE_MAX_LENGTH = 300  # policy_version.title


@dataclass(frozen=True)
class PolicyUpload:
    loaded: LoadedPolicy
    warnings: list[Problem] = field(default_factory=list)
    version_id: int | None = None  # None on a dry run
    created: bool = False  # a new version (False: the same text was stored before, or a dry run)


class PolicyProblemsError(InvalidInputError):
    """A policy text with errors: `problems` lists each one with its line, column and severity."""

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = [_public(p) for p in problems]  # type: ignore[assignment]


def _public(problem: Problem) -> dict[str, object]:
    return {"line": problem.line, "column": problem.column, "severity": problem.severity,
            "message": problem.message, "hint": problem.hint}


async def check_policy_text(session: AsyncSession, text: str) -> tuple[LoadedPolicy, list[Problem]]:
    """Load and lint `text`; raise PolicyProblemsError when it has errors, else return it and its warnings."""
    try:
        loaded = load_policy_text(text, file=UPLOAD_FILE)
    except PolicyError as exc:
        raise PolicyProblemsError(f"the policy has {len(exc.problems)} problem(s)", exc.problems) from None
    problems = lint(loaded, await load_organisation(session))
    if len(loaded.policy.title) > TITLE_MAX_LENGTH:
        line, column = loaded.where("title")
        problems.append(Problem(UPLOAD_FILE, line, column,
                                f"title: at most {TITLE_MAX_LENGTH} characters, got {len(loaded.policy.title)}"))
    problems.sort(key=lambda p: (p.line, p.column))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise PolicyProblemsError(f"the policy has {len(errors)} error(s)", problems)
    return loaded, problems


async def upload_policy(session: AsyncSession, registry: PolicyRegistry, *, text: str, actor_id: str,
                        now: datetime, dry_run: bool = False) -> PolicyUpload:
    """Check `text` and, unless `dry_run`, store it as the current version of its policy (identical text:
    the version stored before becomes current again). Publish it to `registry` after the commit."""
    loaded, warnings = await check_policy_text(session, text)
    if dry_run:
        return PolicyUpload(loaded=loaded, warnings=warnings)
    before = (await session.execute(select(PolicyVersionRow).where(
        PolicyVersionRow.policy_id == loaded.id, PolicyVersionRow.current))).scalar_one_or_none()
    row, created = await registry.store_version(session, loaded, now=now, source=UPLOAD_SOURCE + loaded.id)
    await append_audit(session, at=now, actor_id=actor_id, action="policy.upload", subject_type="policy",
                       subject_id=loaded.id, data={
                           "kind": loaded.policy.kind, "version": row.id, "content_hash": loaded.content_hash,
                           "new_version": created, "warnings": len(warnings),
                           "before": None if before is None else {"version": before.id,
                                                                  "content_hash": before.content_hash}})
    return PolicyUpload(loaded=loaded, warnings=warnings, version_id=row.id, created=created)
