"""My notification preferences: `GET /api/me/preferences`, `PUT /api/me/preferences` (lang zh-CN | en,
notify_mode immediate | digest, digest_at HH:MM; a field left out stays). Audited as `person.preferences`."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CurrentPerson
from api.idempotency import Write
from api.schemas_notifications import Preferences, PreferencesUpdate
from config import clock
from store.preferences import preferences_of, update_preferences

router = APIRouter(prefix="/api/me", tags=["people"])


@router.get("/preferences", response_model=Preferences)
async def read(person: CurrentPerson) -> Preferences:
    return Preferences(**preferences_of(person))


@router.put("/preferences", response_model=Preferences)
async def change(body: PreferencesUpdate, person: CurrentPerson, write: Write) -> Preferences:
    """Change any of lang, notify_mode and digest_at; 422 naming each bad field (nothing is stored then)."""
    async with write() as session:
        row = await update_preferences(session, person, body.model_dump(exclude_unset=True), actor_id=person.id,
                                       now=clock.now())
        answer = write.respond(Preferences(**preferences_of(row)))
    return answer
