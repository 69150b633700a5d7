"""Organisation administration over HTTP: departments, people, roles; every change checked as a whole."""

from __future__ import annotations

from sqlalchemy import select

from store.tables import AuditEventRow

NEW_PERSON = {"id": "qian.hui", "name": "钱慧", "department": "finance", "title": "出纳",
              "email": "qian.hui@hospital.example", "roles": ["cashier"], "password": "first-password-1"}


async def audit_events(runtime, action: str) -> list[AuditEventRow]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(AuditEventRow).where(AuditEventRow.action == action)
                                           .order_by(AuditEventRow.seq))).scalars())


class TestDepartments:
    async def test_create_and_rename_a_department_is_listed_and_audited(self, live_server, runtime):
        with live_server.client("admin") as admin:
            created = admin.post("/api/departments", json={"code": "quality", "name": "质控科",
                                                           "head": "wu.qiang", "leader_in_charge": "chen.jing"})
            assert created.status_code == 201, created.text
            renamed = admin.patch("/api/departments/quality", json={"name": "质量控制科"})
            assert renamed.status_code == 200, renamed.text
        with live_server.client("huang.lei") as staff:
            listing = staff.get("/api/departments").json()
        assert {"code": "quality", "name": "质量控制科", "head": "wu.qiang", "leader_in_charge": "chen.jing"} \
            in listing["items"]
        assert listing["count"] == 8
        update = (await audit_events(runtime, "department.update"))[-1]
        assert update.actor_id == "admin"
        assert update.data["before"]["name"] == "质控科"
        assert update.data["after"]["name"] == "质量控制科"

    def test_a_head_who_is_not_a_person_is_refused_and_nothing_is_stored(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.patch("/api/departments/general", json={"head": "no.body", "name": "改名"})
            assert answer.status_code == 422
            assert answer.json()["error"]["problems"] == {"department general": "head 'no.body' is not a person"}
            general = next(d for d in admin.get("/api/departments").json()["items"] if d["code"] == "general")
        assert general == {"code": "general", "name": "综合管理部", "head": "liu.yang", "leader_in_charge": "li.ming"}

    def test_an_existing_code_is_a_conflict(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.post("/api/departments", json={"code": "finance", "name": "财务二科"})
        assert answer.status_code == 409
        assert "finance" in answer.json()["error"]["message"]

    def test_a_badly_formed_body_names_the_field(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.post("/api/departments", json={"code": "Bad Code", "name": "x", "budget": 3})
        assert answer.status_code == 422
        assert set(answer.json()["error"]["problems"]) == {"code", "budget"}


class TestPeople:
    async def test_a_new_person_signs_in_and_after_deactivation_cannot(self, live_server, runtime):
        with live_server.client("admin") as admin:
            created = admin.post("/api/people", json=NEW_PERSON)
            assert created.status_code == 201, created.text
            assert "password" not in created.json()
        with live_server.client("qian.hui", password="first-password-1") as newcomer:
            assert newcomer.get("/api/me").json()["department"] == "finance"
        with live_server.client("admin") as admin:
            assert admin.patch("/api/people/qian.hui", json={"active": False}).status_code == 200
        with live_server.client("qian.hui", password="first-password-1") as newcomer:
            assert newcomer.get("/api/me").status_code == 401
        created_event = (await audit_events(runtime, "person.create"))[-1]
        assert created_event.data["after"]["roles"] == ["cashier"]
        assert created_event.data["after"]["password_set"] is True
        deactivated = (await audit_events(runtime, "person.deactivate"))[-1]
        assert (deactivated.data["before"]["active"], deactivated.data["after"]["active"]) == (True, False)
        assert "argon2" not in str(created_event.data) + str(deactivated.data)

    async def test_a_password_reset_replaces_the_old_password(self, live_server, runtime):
        with live_server.client("admin") as admin:
            answer = admin.patch("/api/people/ma.chao", json={"password": "a-new-secret-9"})
            assert answer.status_code == 200, answer.text
        with live_server.client("ma.chao", password="a-new-secret-9") as person:
            assert person.get("/api/me").status_code == 200
        with live_server.client("ma.chao") as person:  # the old demo password
            assert person.get("/api/me").status_code == 401
        event = (await audit_events(runtime, "person.update"))[-1]
        assert event.data["after"]["password_reset"] is True
        assert "argon2" not in str(event.data)

    def test_a_person_in_a_department_that_does_not_exist_is_refused(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.post("/api/people", json=NEW_PERSON | {"department": "nowhere"})
            assert answer.status_code == 422
            assert answer.json()["error"]["problems"] == {
                "person qian.hui": "department 'nowhere' does not exist"}
            assert admin.get("/api/people/qian.hui").status_code == 404

    def test_deactivating_a_department_head_is_refused(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.patch("/api/people/liu.yang", json={"active": False})
            assert answer.status_code == 422
            assert answer.json()["error"]["problems"] == {"department general": "head 'liu.yang' is deactivated"}
            assert admin.get("/api/people/liu.yang").json()["active"] is True
        with live_server.client("liu.yang") as head:
            assert head.get("/api/me").status_code == 200

    def test_the_last_administrator_cannot_remove_their_own_role(self, live_server):
        with live_server.client("admin") as admin:
            answer = admin.patch("/api/people/admin", json={"roles": []})
            assert answer.status_code == 422
            assert answer.json()["error"]["problems"] == {
                "role admin": "no active person holds it (nobody could administer duly)"}
            assert admin.patch("/api/people/feng.xue", json={"roles": ["admin"]}).status_code == 200
            assert admin.patch("/api/people/admin", json={"roles": []}).status_code == 200
        with live_server.client("admin") as former:
            assert former.get("/api/roles").status_code == 403

    def test_moving_a_head_away_is_allowed_once_the_department_has_a_new_head(self, live_server):
        with live_server.client("admin") as admin:
            assert admin.patch("/api/departments/finance", json={"head": "ma.chao"}).status_code == 200
            answer = admin.patch("/api/people/sun.li", json={"department": "hr", "title": "人事专员"})
            assert answer.status_code == 200, answer.text
        assert answer.json()["department"] == "hr"

    def test_the_id_cannot_be_changed_and_null_is_refused(self, live_server):
        with live_server.client("admin") as admin:
            renamed = admin.patch("/api/people/ma.chao", json={"id": "ma.chao2"})
            nulled = admin.patch("/api/people/ma.chao", json={"name": None})
        assert renamed.status_code == 422
        assert "id" in renamed.json()["error"]["problems"]
        assert nulled.status_code == 422
        assert nulled.json()["error"]["problems"] == {"name": "give a value or leave the field out"}


class TestDirectory:
    def test_staff_see_the_directory_without_email_addresses(self, live_server):
        with live_server.client("huang.lei") as staff:
            listing = staff.get("/api/people", params={"q": "刘"}).json()
            one = staff.get("/api/people/zhao.weidong").json()
        assert [p["id"] for p in listing["items"]] == ["liu.yang"]
        assert "email" not in listing["items"][0]
        assert "email" not in one
        assert one["roles"] == ["cfo"]

    def test_administrators_see_email_addresses(self, live_server):
        with live_server.client("admin") as admin:
            listing = admin.get("/api/people", params={"department": "finance"}).json()
        assert [p["id"] for p in listing["items"]] == ["ma.chao", "sun.li", "zhao.weidong"]
        assert listing["items"][2]["email"] == "zhao.weidong@hospital.example"

    def test_filter_by_role_and_page(self, live_server):
        with live_server.client("huang.lei") as staff:
            by_role = staff.get("/api/people", params={"role": "vice_president"}).json()
            page = staff.get("/api/people", params={"limit": 2, "offset": 3}).json()
            everyone = staff.get("/api/people").json()
            too_many = staff.get("/api/people", params={"limit": 501})
        assert [p["id"] for p in by_role["items"]] == ["chen.jing", "li.ming"]
        assert by_role["count"] == 2
        assert page["count"] == everyone["count"] == 16
        assert page["items"] == everyone["items"][3:5]
        assert too_many.status_code == 422

    def test_a_search_with_like_wildcards_matches_them_literally(self, live_server):
        with live_server.client("huang.lei") as staff:
            assert staff.get("/api/people", params={"q": "%"}).json()["count"] == 0
            assert staff.get("/api/people", params={"q": "_"}).json()["count"] == 0


def test_roles_show_who_holds_them_and_which_policies_name_them(live_server):
    with live_server.client("admin") as admin:
        roles = {r["role"]: r for r in admin.get("/api/roles").json()["items"]}
    assert roles["cfo"] == {"role": "cfo", "people": ["zhao.weidong"], "inactive": [],
                            "policies": ["it-hardware-purchase"]}
    assert roles["statistician"]["policies"] == ["municipal-monthly-reports"]
    assert roles["admin"]["people"] == ["admin"]
    assert roles["admin"]["policies"] == []


ADMIN_ROUTES = [
    ("POST", "/api/departments", {"json": {"code": "x", "name": "x"}}),
    ("PATCH", "/api/departments/finance", {"json": {"name": "x"}}),
    ("POST", "/api/people", {"json": NEW_PERSON}),
    ("PATCH", "/api/people/huang.lei", {"json": {"roles": ["admin"]}}),
    ("GET", "/api/roles", {}),
    ("POST", "/api/policies", {"content": "kind: approval", "headers": {"Content-Type": "application/yaml"}}),
    ("PUT", "/api/holidays/2027", {"content": "year: 2027", "headers": {"Content-Type": "application/yaml"}}),
]


def test_administration_is_for_administrators_only(live_server):
    """Every change, and the role overview, answers 403 to anyone else (401 when not signed in)."""
    with live_server.client("zhao.weidong") as cfo, live_server.client(None) as anonymous:
        for method, path, kwargs in ADMIN_ROUTES:
            answer = cfo.request(method, path, **kwargs)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["error"] == {"code": "forbidden", "message": "administrators only", "problems": {}}
            assert anonymous.request(method, path, **kwargs).status_code == 401, (method, path)
        assert cfo.get("/api/me").json()["roles"] == ["cfo"]
