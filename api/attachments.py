"""Attachments over HTTP: upload (multipart), metadata, download.

The upload is read as a stream and given up as soon as it passes the size limit (plus a little room for the
multipart framing), so a huge upload is never buffered whole; a Content-Length above the limit is refused
before reading anything. Downloads are always `attachment` (never rendered inline) with `nosniff`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import CurrentPerson, SessionDep
from api.errors import error_body
from api.idempotency import Write
from api.schemas import RowId
from api.schemas_reports import AttachmentPublic
from config import clock
from store.approvals import visible_request
from store.attachments import DEFAULT_MAX_BYTES, TooLargeError, UnsupportedTypeError, store_upload, without_content
from store.errors import InvalidInputError, NotFoundError
from store.notices import to_local
from store.obligation_access import sees
from store.tables import AttachmentRow, ObligationRow, PersonRow, SubmissionRow

router = APIRouter(prefix="/api", tags=["attachments"])
FRAMING_ROOM = 64 * 1024  # multipart boundaries, part headers and the `kind` field
CHUNK = 1024 * 1024

_UPLOAD_SCHEMA: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "PDF, PNG, JPEG, XLSX, DOCX, XLS, DOC, CSV or TXT (UTF-8 or GB18030)"},
                   "kind": {"type": "string", "description": "attachment kind a policy requires, "
                                                             "e.g. paper_copy_sealed"}}}}}}}


def max_upload_bytes(http: Request) -> int:
    settings = http.app.state.runtime.settings
    return int(getattr(settings, "attachment_max_bytes", None) or DEFAULT_MAX_BYTES)


def public(row: AttachmentRow, tz: str) -> AttachmentPublic:
    return AttachmentPublic(id=row.id or 0, filename=row.filename, content_type=row.content_type, size=row.size,
                            sha256=row.sha256, kind=row.kind, uploaded_by=row.uploaded_by,
                            uploaded_at=to_local(row.uploaded_at, tz),  # type: ignore[arg-type]
                            attached_to=f"{row.owner_type}:{row.owner_id}" if row.owner_type else None)


class _TooLarge(Exception):
    pass


async def _limited(http: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in http.stream():
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(error_body("too_large", f"the file is larger than the limit of {limit} bytes "
                                                f"({limit / 1048576:g} MiB)", {"file": "too large"}), status_code=413)


async def _read_upload(http: Request, limit: int) -> tuple[bytes, str | None, str | None, str | None]:
    """The file's bytes, filename, declared type, and the `kind` field; at most `limit` bytes are kept."""
    if not http.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInputError("send the file as multipart/form-data with a part named `file`",
                                {"file": "expected a multipart/form-data body"})
    parser = MultiPartParser(http.headers, _limited(http, limit + FRAMING_ROOM), max_files=1, max_fields=4,
                             max_part_size=4096)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInputError(f"the multipart body is not valid: {exc}", {"file": str(exc)}) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInputError("no file: send it in a multipart part named `file` with a filename",
                                    {"file": "required"})
        content = bytearray()
        while chunk := await upload.read(CHUNK):
            content.extend(chunk)
            if len(content) > limit:
                raise TooLargeError
        kind = form.get("kind")
        return bytes(content), upload.filename, upload.content_type, kind if isinstance(kind, str) else None
    finally:
        await form.close()


@router.post("/attachments", status_code=status.HTTP_201_CREATED, response_model=AttachmentPublic,
             openapi_extra=_UPLOAD_SCHEMA,
             responses={413: {"description": "larger than the limit (20 MiB by default)"},
                        415: {"description": "not an accepted file type"},
                        422: {"description": "the declared type or extension does not match the content"}})
async def upload_attachment(person: CurrentPerson, write: Write, http: Request) -> Any:
    """Upload one file (multipart: `file`, optional `kind`). It is yours alone until you attach it to a
    submission (POST /api/obligations/{id}/submissions)."""
    limit = max_upload_bytes(http)
    declared_length = http.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > limit + FRAMING_ROOM:
        return _too_large(limit)
    try:
        content, filename, declared, kind = await _read_upload(http, limit)
    except (_TooLarge, TooLargeError):
        return _too_large(limit)
    try:
        async with write() as session:
            row = await store_upload(session, content=content, filename=filename, declared=declared, kind=kind,
                                     uploader_id=person.id, now=clock.now(), max_bytes=limit)
            answer = write.respond(public(row, http.app.state.runtime.timezone), status_code=201)
    except TooLargeError:
        return _too_large(limit)
    except UnsupportedTypeError as exc:
        return JSONResponse(error_body("unsupported_type", str(exc), {"file": str(exc)}), status_code=415)
    return answer


async def visible_attachment(session: AsyncSession, attachment_id: int, person: PersonRow, *,
                             with_content: bool = False) -> AttachmentRow:
    """The attachment if `person` uploaded it or may see what it is attached to; NotFoundError otherwise."""
    query = select(AttachmentRow).where(AttachmentRow.id == attachment_id)
    if not with_content:
        query = query.options(without_content())
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None or not (row.uploaded_by == person.id or await _sees_owner(session, row, person)):
        raise NotFoundError(f"no attachment {attachment_id}")
    return row


async def _sees_owner(session: AsyncSession, row: AttachmentRow, person: PersonRow) -> bool:
    request_id = row.owner_id if row.owner_type == "request" else None
    if row.owner_type == "submission":
        found = (await session.execute(select(SubmissionRow, ObligationRow).join(
            ObligationRow, ObligationRow.id == SubmissionRow.obligation_id).where(
            SubmissionRow.id == row.owner_id))).first()
        if found is None:
            return False
        if await sees(session, person, found[1]):
            return True
        request_id = found[0].review_request_id
    if request_id is None:
        return False
    try:
        await visible_request(session, request_id, person.id)
    except NotFoundError:
        return False
    return True


@router.get("/attachments/{attachment_id}", response_model=AttachmentPublic)
async def read_attachment(attachment_id: RowId, person: CurrentPerson, session: SessionDep,
                          http: Request) -> AttachmentPublic:
    row = await visible_attachment(session, attachment_id, person)
    return public(row, http.app.state.runtime.timezone)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name as RFC 5987 `filename*` (RFC 6266)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/attachments/{attachment_id}/content", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"}})
async def download_attachment(attachment_id: RowId, person: CurrentPerson, session: SessionDep) -> Response:
    row = await visible_attachment(session, attachment_id, person, with_content=True)
    return Response(content=row.content, media_type=row.content_type,
                    headers={"Content-Disposition": content_disposition(row.filename),
                             "X-Content-Type-Options": "nosniff",
                             "Content-Security-Policy": "default-src 'none'; sandbox",
                             "Cache-Control": "private, no-store"})
