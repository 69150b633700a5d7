"""Attachments: files stored in the database, checked by what their bytes are, attached once.

Rules:
- A file is accepted only if its bytes are one of the allowed types (`sniff_type`): PDF, PNG, JPEG,
  XLSX/DOCX (a zip container holding `xl/` or `word/`), XLS/DOC (an OLE2 compound file), or text (CSV/TXT)
  that decodes as UTF-8 or GB18030 and has no NUL or other binary control bytes.
- The type the uploader declares (the part's Content-Type) must name the same type as the bytes; an
  undeclared type (`application/octet-stream` or none) takes the type of the bytes. A filename extension
  that names another known type is refused too (`报表.pdf` holding a PNG).
- Filenames are sanitised (`clean_filename`): no directories, no control or bidi-override characters,
  no leading dots, at most 255 characters with the extension kept; Chinese is kept.
- A new attachment belongs to nobody but its uploader; `attach` gives it to one submission or one request,
  once (compare-and-set on `owner_type IS NULL`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import defer
from sqlmodel.ext.asyncio.session import AsyncSession

from store.audit import append_audit
from store.errors import ConflictError, InvalidInputError
from store.tables import AttachmentRow

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_FILENAME = 255


class UnsupportedTypeError(ValueError):
    """The bytes are not one of the accepted file types (answered 415)."""


class TooLargeError(ValueError):
    """The upload is larger than the limit (answered 413)."""


@dataclass(frozen=True)
class FileType:
    key: str
    content_type: str
    label: str
    extensions: tuple[str, ...]
    aliases: tuple[str, ...] = ()


TYPES: dict[str, FileType] = {t.key: t for t in (
    FileType("pdf", "application/pdf", "PDF", (".pdf",), ("application/x-pdf",)),
    FileType("png", "image/png", "PNG", (".png",)),
    FileType("jpeg", "image/jpeg", "JPEG", (".jpg", ".jpeg"), ("image/jpg", "image/pjpeg")),
    FileType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX", (".xlsx",)),
    FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "DOCX", (".docx",)),
    FileType("xls", "application/vnd.ms-excel", "XLS", (".xls",)),
    FileType("doc", "application/msword", "DOC", (".doc",)),
    FileType("csv", "text/csv", "CSV", (".csv",), ("application/csv", "text/comma-separated-values")),
    FileType("txt", "text/plain", "TXT", (".txt",)),
)}
ACCEPTED = ", ".join(t.content_type for t in TYPES.values())
_UNDECLARED = {"", "application/octet-stream", "binary/octet-stream"}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class Sniffed:
    """What the bytes are: one of TYPES (text: csv or txt share one sniff) and, for text, its encoding."""

    family: str  # pdf | png | jpeg | xlsx | docx | xls | doc | text
    encoding: str | None = None


def sniff_type(content: bytes) -> Sniffed:
    """The type of `content` by its magic bytes (module docstring); UnsupportedTypeError otherwise."""
    if content.startswith(b"%PDF-"):
        return Sniffed("pdf")
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png")
    if content.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg")
    if content.startswith(b"PK\x03\x04"):
        return Sniffed(_office_zip(content))
    if content.startswith(_OLE2):
        # directory entry names are UTF-16LE: Word keeps a "WordDocument" stream, Excel a "Workbook" (or "Book")
        if "WordDocument".encode("utf-16-le") in content:
            return Sniffed("doc")
        if "Workbook".encode("utf-16-le") in content or "Book".encode("utf-16-le") in content:
            return Sniffed("xls")
        raise UnsupportedTypeError("the file is an OLE2 compound file but neither a Word (.doc) nor an Excel (.xls) "
                                   "document")
    encoding = _text_encoding(content)
    if encoding is not None:
        return Sniffed("text", encoding)
    raise UnsupportedTypeError(f"the file's content is not an accepted type (accepted: {ACCEPTED})")


def _office_zip(content: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise UnsupportedTypeError("the file starts like a zip container but is not a readable one") from None
    if "[Content_Types].xml" in names:
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
        if any(n.startswith("word/") for n in names):
            return "docx"
    raise UnsupportedTypeError("the file is a zip archive but not an Excel (.xlsx) or Word (.docx) document; "
                               "archives are not accepted")


def _text_encoding(content: bytes) -> str | None:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _BINARY_CONTROLS.search(text):
            return None
        return "utf-8" if encoding == "utf-8-sig" else encoding
    return None


def resolve_type(sniffed: Sniffed, *, declared: str | None, filename: str) -> str:
    """The content type to store: the declared type if it names what the bytes are (module docstring).
    InvalidInputError (422) when the declaration or the extension contradicts the bytes."""
    base = (declared or "").split(";")[0].strip().lower()
    extension = os.path.splitext(filename)[1].lower()
    by_extension = next((t for t in TYPES.values() if extension in t.extensions), None)
    if sniffed.family == "text":
        candidates = [TYPES["csv"], TYPES["txt"]]
        chosen = next((t for t in candidates if base in (t.content_type, *t.aliases)), None)
        if chosen is None and base == "application/vnd.ms-excel" and extension == ".csv":
            chosen = TYPES["csv"]  # what Windows browsers declare for a .csv when Excel is installed
        if chosen is None and base in _UNDECLARED:
            chosen = by_extension if by_extension in candidates else TYPES["txt"]
        what = "text (CSV/TXT)"
    else:
        file_type = TYPES[sniffed.family]
        candidates = [file_type]
        chosen = file_type if base in (file_type.content_type, *file_type.aliases, *_UNDECLARED) else None
        what = file_type.label
    if chosen is None:
        if not any(base in (t.content_type, *t.aliases) for t in TYPES.values()):
            raise UnsupportedTypeError(f"content type {base or '(none)'!r} is not accepted (accepted: {ACCEPTED})")
        raise InvalidInputError(f"the file was declared as {base!r} but its content is {what}",
                                {"file": f"declared {base}, content is {what}"})
    if by_extension is not None and by_extension not in candidates:
        raise InvalidInputError(f"the filename ends in {extension!r} but the content is {what}",
                                {"file": f"extension {extension} does not match the content ({what})"})
    return f"{chosen.content_type}; charset={sniffed.encoding}" if sniffed.encoding else chosen.content_type


def clean_filename(raw: str | None) -> str:
    """A safe display name for an uploaded file (module docstring)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = name.strip().lstrip(".").strip()
    if len(name) > MAX_FILENAME:
        stem, extension = os.path.splitext(name)
        extension = extension if len(extension) <= 16 else ""
        name = stem[:MAX_FILENAME - len(extension)] + extension
    return name or "attachment"


def without_content():  # type: ignore[no-untyped-def]
    """A loader option: the row without its bytes (metadata reads must not pull 20 MiB blobs)."""
    return defer(AttachmentRow.content)  # type: ignore[arg-type]


def check_kind(kind: str | None) -> str | None:
    if kind is None or kind == "":
        return None
    if not KIND_PATTERN.fullmatch(kind):
        raise InvalidInputError("kind must be a lower-case word such as paper_copy_sealed",
                                {"kind": f"expected a lower-case word (a-z, 0-9, _), got {kind[:70]!r}"})
    return kind


async def store_upload(session: AsyncSession, *, content: bytes, filename: str | None, declared: str | None,
                       kind: str | None, uploader_id: str, now: datetime,
                       max_bytes: int = DEFAULT_MAX_BYTES) -> AttachmentRow:
    """Check and store one uploaded file, unattached, owned by its uploader."""
    if len(content) > max_bytes:
        raise TooLargeError(f"the file is larger than the limit of {max_bytes} bytes ({max_bytes // 1048576} MiB)")
    if not content:
        raise InvalidInputError("the file is empty", {"file": "empty file"})
    name = clean_filename(filename)
    content_type = resolve_type(sniff_type(content), declared=declared, filename=name)
    row = AttachmentRow(kind=check_kind(kind), filename=name, content_type=content_type, size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(), content=content, uploaded_by=uploader_id,
                        uploaded_at=now)
    session.add(row)
    await session.flush()
    await append_audit(session, at=now, actor_id=uploader_id, action="attachment.uploaded",
                       subject_type="attachment", subject_id=row.id or 0,
                       data={"filename": name, "content_type": content_type, "size": row.size,
                             "sha256": row.sha256, "kind": row.kind})
    return row


async def attach(session: AsyncSession, *, attachment_ids: Sequence[int], owner_type: str, owner_id: int,
                 person_id: str, now: datetime) -> list[AttachmentRow]:
    """Give the listed attachments (each uploaded by `person_id`, none attached yet) to one owner."""
    if len(set(attachment_ids)) != len(attachment_ids):
        raise InvalidInputError("an attachment is listed twice", {"attachments": "each id at most once"})
    rows = {r.id: r for r in (await session.execute(select(AttachmentRow).options(without_content()).where(
        AttachmentRow.id.in_(list(attachment_ids))))).scalars()}  # type: ignore[union-attr]
    problems = {f"attachments.{i}": "no attachment with this id that you uploaded"
                for i in attachment_ids if i not in rows or rows[i].uploaded_by != person_id}
    if problems:
        raise InvalidInputError("unknown attachments: upload each file first (POST /api/attachments)", problems)
    for attachment_id in attachment_ids:
        changed = await session.execute(update(AttachmentRow).where(
            AttachmentRow.id == attachment_id, AttachmentRow.owner_type.is_(None))  # type: ignore[union-attr,arg-type]
            .values(owner_type=owner_type, owner_id=owner_id))
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            owner = (await session.execute(select(AttachmentRow.owner_type, AttachmentRow.owner_id).where(
                AttachmentRow.id == attachment_id))).one()
            raise ConflictError(f"attachment {attachment_id} is already attached to {owner[0]} {owner[1]}; "
                                "an attachment can be attached once (upload the file again)")
        rows[attachment_id].owner_type, rows[attachment_id].owner_id = owner_type, owner_id
    found = [rows[i] for i in attachment_ids]
    if found:
        await append_audit(session, at=now, actor_id=person_id, action="attachment.attached",
                           subject_type=owner_type, subject_id=owner_id, data={"attachments": list(attachment_ids)})
    return found
