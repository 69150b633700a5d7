"""Idempotency-Key over HTTP (DESIGN invariant 3): a retry with the same key returns the first answer and
changes nothing; the same key with another body is refused; errors are not stored."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import File, Form, UploadFile
from sqlalchemy import func, select

from api.app import create_app
from api.idempotency import Write
from store.db import sync_engine_for
from store.tables import AuditEventRow, IdempotencyRow, OutboxRow, RequestRow

PURCHASE = {"policy": "it-hardware-purchase", "form": {"items": "笔记本电脑 2台", "amount": "12000"}}


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def counts(server) -> dict[str, int]:
    """Rows that a filing adds: requests, audit events, outbox messages, stored keys."""
    engine = sync_engine_for(server.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            return {table.__tablename__: connection.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (RequestRow, AuditEventRow, OutboxRow, IdempotencyRow)}
    finally:
        engine.dispose()


def file_with_key(server, key: str, body: dict = PURCHASE, user: str = "huang.lei"):
    with server.client(user) as client:
        return client.post("/api/requests", json=body, headers={"Idempotency-Key": key})


def test_retried_filing_returns_the_first_answer_and_files_once(live_server):
    key = new_key()
    first = file_with_key(live_server, key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    after_first = counts(live_server)
    retry = file_with_key(live_server, key)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert counts(live_server) == after_first
    assert after_first["audit_event"] > 0 and after_first["outbox"] > 0 and after_first["idempotency_key"] == 1


def test_calls_without_a_key_are_not_deduplicated(live_server):
    with live_server.client("huang.lei") as client:
        ids = {client.post("/api/requests", json=PURCHASE).json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert counts(live_server)["idempotency_key"] == 0


def test_same_key_with_another_body_is_refused(live_server):
    key = new_key()
    assert file_with_key(live_server, key).status_code == 201
    before = counts(live_server)
    other = {"policy": "it-hardware-purchase", "form": {"items": "打印机", "amount": "3000"}}
    answer = file_with_key(live_server, key, other)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in answer.json()["error"]["problems"]
    assert counts(live_server) == before


def test_same_key_on_another_path_is_refused(live_server):
    filed = file_with_key(live_server, new_key()).json()
    key = new_key()
    with live_server.client("liu.yang") as client:
        url = f"/api/requests/{filed['id']}/steps/{filed['steps'][0]['id']}/decision"
        assert client.post(url, json={"verb": "approve"}, headers={"Idempotency-Key": key}).status_code == 200
        answer = client.post("/api/requests", json={"verb": "approve"}, headers={"Idempotency-Key": key})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "idempotency_key_reused"
    assert f"POST {url}" in answer.json()["error"]["message"]


def test_the_same_key_of_another_person_is_independent(live_server):
    key = new_key()
    mine = file_with_key(live_server, key, user="huang.lei")
    theirs = file_with_key(live_server, key, user="lin.fang")
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["requester"] == "lin.fang"


def test_eight_concurrent_calls_with_one_key_file_one_request(live_server):
    key = new_key()
    before = counts(live_server)
    barrier = threading.Barrier(8)
    answers: list = []
    lock = threading.Lock()

    def call() -> None:
        with live_server.client("huang.lei") as client:
            barrier.wait()
            answer = client.post("/api/requests", json=PURCHASE, headers={"Idempotency-Key": key})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    after = counts(live_server)
    assert after["request"] == before["request"] + 1
    assert after["idempotency_key"] == before["idempotency_key"] + 1


def test_a_refused_call_is_not_stored_so_the_corrected_body_runs_under_the_same_key(live_server):
    """An error changed nothing and stored nothing: the corrected call under the same key is executed,
    and from then on that key replays the success."""
    key = new_key()
    bad = {"policy": "it-hardware-purchase", "form": {"amount": "abc"}}
    refused = file_with_key(live_server, key, bad)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid"
    assert counts(live_server)["idempotency_key"] == 0
    assert file_with_key(live_server, key, bad).status_code == 422  # a retry of the error runs again
    corrected = file_with_key(live_server, key)
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers
    again = file_with_key(live_server, key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == corrected.json()
    assert file_with_key(live_server, key, bad).json()["error"]["code"] == "idempotency_key_reused"


def test_a_decision_retried_after_success_returns_the_first_200_not_409(live_server):
    filed = file_with_key(live_server, new_key()).json()
    url = f"/api/requests/{filed['id']}/steps/{filed['steps'][0]['id']}/decision"
    key = new_key()
    with live_server.client("liu.yang") as client:
        first = client.post(url, json={"verb": "approve"}, headers={"Idempotency-Key": key})
        retry = client.post(url, json={"verb": "approve"}, headers={"Idempotency-Key": key})
        unkeyed = client.post(url, json={"verb": "approve"})
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "approved"
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert unkeyed.status_code == 409  # without the key the second decision is a conflict, as before


@pytest.mark.parametrize("key", [b"", b"x" * 201, b"two words", "\u5e42\u7b49".encode(), b"tab\there"])
def test_a_malformed_key_is_refused_with_the_header_named(live_server, key):
    before = counts(live_server)
    with live_server.client("huang.lei") as client:
        answer = client.post("/api/requests", json=PURCHASE, headers=[(b"Idempotency-Key", key)])
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid"
    assert "Idempotency-Key" in error["message"] and "Idempotency-Key" in error["problems"]
    assert counts(live_server) == before


def test_a_key_of_200_visible_characters_is_accepted(live_server):
    key = "~!" * 100
    assert file_with_key(live_server, key).status_code == 201
    assert file_with_key(live_server, key).headers["Idempotent-Replayed"] == "true"


async def test_purged_keys_may_be_used_afresh(live_server, runtime):
    from config import clock
    from store.idempotency import purge_idempotency_keys

    key = new_key()
    first = file_with_key(live_server, key).json()
    async with runtime.write() as session:
        assert await purge_idempotency_keys(session, clock.now() + timedelta(days=6)) == 0
    assert file_with_key(live_server, key).headers["Idempotent-Replayed"] == "true"
    async with runtime.write() as session:
        assert await purge_idempotency_keys(session, clock.now() + timedelta(days=7, minutes=1)) == 1
    again = file_with_key(live_server, key)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first["id"]


async def test_an_upload_with_a_key_is_replayed_and_another_file_is_refused(runtime):
    """Form bodies are parsed before the key is looked up (their raw bytes are gone); their fields and files
    are hashed instead."""
    app = create_app(runtime)
    runs: list[int] = []

    @app.post("/test/upload", status_code=201)
    async def upload(write: Write, note: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> dict:
        content = await file.read()
        async with write():
            runs.append(len(content))
            answer = write.respond({"note": note, "size": len(content), "run": len(runs)}, status_code=201)
        return answer

    key = new_key()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://duly",
                                 auth=("huang.lei", "duly-demo")) as client:
        def send(content: bytes):
            return client.post("/test/upload", data={"note": "月报"}, files={"file": ("a.xlsx", content)},
                               headers={"Idempotency-Key": key})

        first, retry, other = await send(b"x" * 3000), await send(b"x" * 3000), await send(b"y" * 3000)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json() == first.json() == {
        "note": "月报", "size": 3000, "run": 1}
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert runs == [3000]
