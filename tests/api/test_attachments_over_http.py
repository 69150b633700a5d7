"""Attachments over HTTP: size limit, type by content, filenames, who may read them, attached once."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from config import clock
from policies.recurrence import period_containing
from store.attachments import DEFAULT_MAX_BYTES
from store.obligations import materialise_policy
from store.tables import AuditEventRow, ObligationRow

ROOT = Path(__file__).resolve().parents[2]
PROFILE = [ROOT / "policies" / "library" / "hospital",
           ROOT / "policies" / "library" / "hospital-statistics-office" / "report-signoff.yaml",
           ROOT / "tests" / "fixtures" / "reports" / "finance-reports.yaml"]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(30)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"policy_paths": PROFILE})


def xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def upload(client, name: str, content: bytes, declared: str | None, kind: str | None = None):
    files = {"file": (name, content, declared) if declared else (name, content)}
    return client.post("/api/attachments", files=files, data={"kind": kind} if kind else None)


async def plain_obligation(runtime) -> int:
    version_id, loaded = runtime.registry.current("finance-reports")
    today = clock.now().in_timezone("Asia/Shanghai").date()
    async with runtime.write() as session:
        await materialise_policy(session, runtime, version_id=version_id, loaded=loaded, now=clock.now(),
                                 periods=[period_containing(today, "monthly")])
        return (await session.execute(select(ObligationRow.id).where(
            ObligationRow.obligation_key == "F-PLAIN"))).scalar_one()


class TestTypeChecks:
    def test_png_declared_as_pdf_is_refused_with_both_types_named(self, live_server):
        with live_server.client("ma.chao") as client:
            answer = upload(client, "scan.png", PNG, "application/pdf")
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["message"] == "the file was declared as 'application/pdf' but its content is PNG"

    def test_pdf_named_png_is_refused_by_its_extension(self, live_server):
        with live_server.client("ma.chao") as client:
            answer = upload(client, "scan.png", PDF, "application/octet-stream")
        assert answer.status_code == 422
        assert "'.png'" in answer.json()["error"]["message"]

    def test_executable_is_unsupported(self, live_server):
        with live_server.client("ma.chao") as client:
            answer = upload(client, "setup.exe", b"MZ\x90\x00\x03" + bytes(100), "application/x-msdownload")
            zipped = upload(client, "a.zip", _zip_archive(), "application/zip")
        assert answer.status_code == 415
        assert answer.json()["error"]["code"] == "unsupported_type"
        assert zipped.status_code == 415 and "archives are not accepted" in zipped.json()["error"]["message"]

    def test_xlsx_gb18030_csv_and_undeclared_pdf_are_accepted_as_what_they_are(self, live_server):
        csv = "科室,门诊人次\n内科,1200\n".encode("gb18030")
        with live_server.client("ma.chao") as client:
            sheet = upload(client, "数据.xlsx", xlsx(), "application/vnd.openxmlformats-officedocument."
                                                          "spreadsheetml.sheet")
            table = upload(client, "门诊.csv", csv, "application/vnd.ms-excel")  # what Windows browsers say
            document = upload(client, "报告.pdf", PDF, "application/octet-stream")
        assert sheet.status_code == 201, sheet.text
        assert table.json()["content_type"] == "text/csv; charset=gb18030"
        assert document.json()["content_type"] == "application/pdf"


def _zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


class TestSizeLimit:
    def test_file_over_the_limit_is_413_and_nothing_is_stored(self, live_server, runtime):
        big = b"%PDF-1.4\n" + bytes(DEFAULT_MAX_BYTES)
        with live_server.client("ma.chao") as client:
            answer = upload(client, "big.pdf", big, "application/pdf")
        assert answer.status_code == 413
        assert "20 MiB" in answer.json()["error"]["message"]

    def test_streamed_upload_without_length_is_cut_off_at_the_limit(self, live_server):
        boundary = "duly-test-boundary"

        def body():
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
                   "Content-Type: text/plain\r\n\r\n").encode()
            for _ in range(DEFAULT_MAX_BYTES // (1024 * 1024) + 2):
                yield b"a" * (1024 * 1024)
            yield f"\r\n--{boundary}--\r\n".encode()

        with live_server.client("ma.chao") as client:
            answer = client.post("/api/attachments", content=body(),
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert answer.status_code == 413


async def test_chinese_filename_round_trips_and_download_is_never_inline(live_server, runtime):
    name = "2026年10月 财务报表（盖章）.pdf"
    with live_server.client("ma.chao") as client:
        created = upload(client, "C:\\Users\\马超\\" + name + "\u202e", PDF, "application/pdf", kind="data_sheet")
        assert created.status_code == 201, created.text
        attachment = created.json()
        download = client.get(f"/api/attachments/{attachment['id']}/content")
        metadata = client.get(f"/api/attachments/{attachment['id']}").json()
    assert attachment["filename"] == name
    assert metadata == attachment and metadata["attached_to"] is None and metadata["kind"] == "data_sheet"
    assert download.content == PDF
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "application/pdf"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"")
    assert disposition.endswith(f"filename*=UTF-8''{quote(name, safe='')}")
    async with runtime.sessions() as session:
        event = (await session.execute(select(AuditEventRow).where(
            AuditEventRow.action == "attachment.uploaded"))).scalar_one()
    assert event.actor_id == "ma.chao" and event.data["filename"] == name


async def test_unattached_file_is_seen_by_its_uploader_only(live_server):
    with live_server.client("ma.chao") as client:
        attachment = upload(client, "a.pdf", PDF, "application/pdf").json()
    for other in ("sun.li", "huang.lei", "he.jing"):
        with live_server.client(other) as client:
            assert client.get(f"/api/attachments/{attachment['id']}").status_code == 404
            assert client.get(f"/api/attachments/{attachment['id']}/content").status_code == 404


async def test_attached_file_is_seen_by_who_sees_the_obligation_not_by_another_department(live_server, runtime):
    obligation_id = await plain_obligation(runtime)
    with live_server.client("ma.chao") as client:
        attachment = upload(client, "a.pdf", PDF, "application/pdf").json()
        submitted = client.post(f"/api/obligations/{obligation_id}/submissions",
                                json={"attachments": [attachment["id"]]})
        assert submitted.status_code == 201, submitted.text
        again = client.post(f"/api/obligations/{obligation_id}/submissions",
                            json={"attachments": [attachment["id"]], "corrects": submitted.json()["id"]})
    assert again.status_code == 409  # attached once: a correction needs the file uploaded again
    assert "already attached to submission" in again.json()["error"]["message"]
    with live_server.client("sun.li") as client:  # same department
        assert client.get(f"/api/attachments/{attachment['id']}/content").status_code == 200
    with live_server.client("he.jing") as client:  # the statistics office sees every obligation
        assert client.get(f"/api/attachments/{attachment['id']}").json()["attached_to"] == \
            f"submission:{submitted.json()['id']}"
    with live_server.client("huang.lei") as client:  # 信息科
        assert client.get(f"/api/attachments/{attachment['id']}").status_code == 404
        assert client.get(f"/api/attachments/{attachment['id']}/content").status_code == 404
