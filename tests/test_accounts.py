"""Accounts over real HTTP and PostgreSQL: roles enforced by one decorator, sessions that end at logout,
CSRF checks on cookie requests (Origin, Sec-Fetch-Site, per-session token), throttling, the audit log."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.accounts import sessions, users
from onair.core.auth import SESSION_COOKIE
from onair.core.settings import Settings
from tests.accounts_helpers import PASSWORD, login, make_user
from tests.conftest import ADMIN

POLL = {"question": "Best act?", "options": ["Singer", "Dog"]}


async def code(resp) -> str:
    return (await resp.json())["type"].rsplit("/", 1)[-1]


def own(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"}


async def test_roles_are_enforced_by_permission(client: TestClient, db) -> None:
    await make_user(db, "mo", "moderator")
    await make_user(db, "ed", "editor")
    csrf = await login(client, "mo")
    h = {**own(client), "X-CSRF-Token": csrf}
    resp = await client.post("/api/v1/assets", json={"source_url": "https://example.com/a.mp4"}, headers=h)
    assert resp.status == 403 and await code(resp) == "permission-denied"
    resp = await client.post("/api/v1/polls", json=POLL, headers=h)
    assert resp.status == 403 and "polls:write" in (await resp.json())["detail"]
    assert (await client.get("/api/v1/chat/main", headers=h)).status == 200  # chat:moderate is theirs

    csrf = await login(client, "ed")  # a new session replaces the cookie
    h = {**own(client), "X-CSRF-Token": csrf}
    assert (await client.get("/api/v1/users")).status == 403
    assert (await client.post("/api/v1/users", json={"name": "x", "role": "admin"}, headers=h)).status == 403
    assert (await client.get("/api/v1/audit")).status == 403
    assert (await client.get("/api/v1/assets")).status == 200
    me = await (await client.get("/api/v1/me")).json()
    assert me["name"] == "ed" and "assets:write" in me["permissions"] and "users:manage" not in me["permissions"]

    # the decorator names the permission on the handler (read by `onair routes`)
    perms = {(r.method, r.resource.canonical): getattr(r.handler, "permission", None)
             for r in client.app.router.routes() if r.resource is not None}
    assert perms[("POST", "/api/v1/polls")] == "polls:write"
    assert perms[("POST", "/api/v1/assets")] == "assets:write"
    assert perms[("POST", "/api/v1/users")] == "users:manage"
    assert perms[("GET", "/api/v1/polls/{poll_id}/results")] is None  # public


async def test_cookie_changes_need_own_origin_and_the_csrf_token(client: TestClient, db) -> None:
    await make_user(db, "pro", "producer")
    csrf = await login(client, "pro")
    port = client.port
    sibling = {"Origin": f"http://127.0.0.1:{port + 1}", "X-CSRF-Token": csrf}
    attempts = [
        ({**own(client)}, "csrf-token"),                                    # no token
        ({**own(client), "X-CSRF-Token": "x" * 43}, "csrf-token"),          # wrong token
        (sibling, "csrf-origin"),                                           # another port of the same host
        ({**own(client), "X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"}, "csrf-origin"),
        ({"Origin": "null", "X-CSRF-Token": csrf}, "csrf-origin"),
    ]
    for headers, expected in attempts:
        resp = await client.post("/api/v1/polls", json=POLL, headers=headers)
        assert resp.status == 403 and await code(resp) == expected, headers
    assert (await db.fetchval("SELECT count(*) FROM polls")) == 0
    resp = await client.post("/api/v1/polls", json=POLL, headers={**own(client), "X-CSRF-Token": csrf})
    assert resp.status == 201
    # bearer requests are not cookie requests: no CSRF token needed, whatever the Origin
    resp = await client.post("/api/v1/polls", json=POLL, headers={**ADMIN, "Origin": "http://elsewhere.example"})
    assert resp.status == 201


async def test_logout_ends_the_session_for_whoever_holds_it(settings: Settings, db) -> None:
    await make_user(db, "ed", "editor")
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c, aiohttp.ClientSession() as thief:
        csrf = await login(c, "ed")
        stolen = c.session.cookie_jar.filter_cookies(c.make_url("/"))[SESSION_COOKIE].value
        assert await db.fetchval("SELECT count(*) FROM sessions WHERE id_hash = $1", sessions.digest(stolen)) == 1
        cookie = {"Cookie": f"{SESSION_COOKIE}={stolen}"}
        assert (await thief.get(c.make_url("/api/v1/me"), headers=cookie)).status == 200
        resp = await c.post("/studio/logout", data={"csrf_token": csrf}, headers=own(c), allow_redirects=False)
        assert resp.status == 303
        assert (await thief.get(c.make_url("/api/v1/me"), headers=cookie)).status == 401
        assert (await c.get("/api/v1/me")).status == 401
    entries = [(e["actor"], e["action"]) for e in (await db.fetch("SELECT actor, action FROM audit_log ORDER BY id"))]
    assert entries == [("ed", "login"), ("ed", "logout")]


async def test_session_cookie_flags(client: TestClient, db) -> None:
    await make_user(db, "ed", "editor")
    resp = await client.post("/studio/login", data={"name": "ed", "password": PASSWORD}, allow_redirects=False)
    header = resp.headers["Set-Cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in header and "SameSite=Strict" in header
    assert "Secure" not in header  # plain http test server, no https public URL
    value = resp.cookies[SESSION_COOKIE].value
    assert len(value) >= 40 and value not in str(await db.fetch("SELECT * FROM sessions"))  # only its hash is kept


async def test_secure_cookie_behind_tls_termination(settings: Settings, db) -> None:
    await make_user(db, "ed", "editor")
    app = create_app(settings.with_(public_url="https://studio.example"), settings.database_url or "",
                     run_worker=False)
    async with TestClient(TestServer(app)) as c:
        resp = await c.post("/studio/login", data={"name": "ed", "password": PASSWORD}, allow_redirects=False)
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_login_throttled_per_account_and_per_address(client: TestClient, db, monkeypatch) -> None:
    await make_user(db, "ed", "editor")
    for _ in range(sessions.ACCOUNT_LIMIT):
        resp = await client.post("/studio/login", data={"name": "ed", "password": "nope"}, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/studio/?error=1"
    resp = await client.post("/studio/login", data={"name": "ed", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 429 and 0 < int(resp.headers["Retry-After"]) <= 900  # even the right password waits
    assert "Too many failed attempts" in await resp.text()

    monkeypatch.setattr(sessions, "IP_LIMIT", sessions.ACCOUNT_LIMIT + 3)  # a short window for the test
    await make_user(db, "pro", "producer")
    for name in ("a1", "a2", "a3"):  # other names, same address: the address's own limit
        await client.post("/studio/login", data={"name": name, "password": "nope"}, allow_redirects=False)
    resp = await client.post("/studio/login", data={"name": "pro", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 429
    await db.execute("DELETE FROM login_throttle WHERE key LIKE 'ip:%'")  # (what the window's end does)
    resp = await client.post("/studio/login", data={"name": "pro", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/studio/"


async def test_admin_manages_users_with_one_time_passwords_and_sees_the_audit(client: TestClient, db,
                                                                            settings: Settings) -> None:
    await make_user(db, "chief", "admin")
    csrf = await login(client, "chief")
    h = {**own(client), "X-CSRF-Token": csrf}
    resp = await client.post("/api/v1/users", json={"name": "ed", "role": "editor"}, headers=h)
    assert resp.status == 201
    one_time = (await resp.json())["password"]
    assert (await client.post("/api/v1/users", json={"name": "ed", "role": "editor"}, headers=h)).status == 409
    bad = await client.post("/api/v1/users", json={"name": "Ed!", "role": "boss"}, headers=h)
    assert bad.status == 400 and bad.content_type == "application/problem+json"

    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as ed:
        ed_csrf = await login(ed, "ed", one_time)
        eh = {**own(ed), "X-CSRF-Token": ed_csrf}
        resp = await ed.post("/api/v1/assets", json={"source_url": "https://example.com/a.mp4"}, headers=eh)
        assert resp.status == 403 and await code(resp) == "password-change-required"
        resp = await ed.post("/api/v1/me/password", json={"current_password": one_time, "new_password": "short"},
                             headers=eh)
        assert resp.status == 400
        resp = await ed.post("/api/v1/me/password", headers=eh,
                             json={"current_password": one_time, "new_password": "a much longer one"})
        assert resp.status == 204
        assert (await (await ed.get("/api/v1/me")).json())["must_change_password"] is False

        resp = await client.patch("/api/v1/users/ed", json={"disabled": True}, headers=h)
        assert resp.status == 200 and (await resp.json())["disabled"] is True
        assert (await ed.get("/api/v1/me")).status == 401  # disabling ends the sessions
        resp = await ed.post("/studio/login", data={"name": "ed", "password": "a much longer one"},
                             allow_redirects=False)
        assert resp.headers["Location"] == "/studio/?error=1"
    resp = await client.patch("/api/v1/users/chief", json={"role": "editor"}, headers=h)
    assert resp.status == 409 and await code(resp) == "last-admin"
    resp = await client.post("/api/v1/users/ed/reset", headers=h)
    assert resp.status == 200 and len((await resp.json())["password"]) >= 16

    audit = await (await client.get("/api/v1/audit?limit=50")).json()
    seen = [(e["actor"], e["action"], e["object_id"]) for e in reversed(audit["entries"])]
    assert seen == [("chief", "login", None), ("chief", "user.create", "ed"), ("ed", "login", None),
                    ("ed", "user.password", "ed"), ("chief", "user.disable", "ed"),
                    ("ed", "login.failed", None), ("chief", "user.reset", "ed")]
    assert all(e["ip"] == "127.0.0.1" for e in audit["entries"])
    page = await (await client.get("/api/v1/audit?limit=2")).json()
    rest = await (await client.get(page["next"])).json()
    assert [e["id"] for e in page["entries"] + rest["entries"]][:4] == [e["id"] for e in audit["entries"]][:4]


async def test_poll_changes_are_audited_with_their_user(client: TestClient, db) -> None:
    await make_user(db, "pro", "producer")
    csrf = await login(client, "pro")
    h = {**own(client), "X-CSRF-Token": csrf}
    poll = await (await client.post("/api/v1/polls", json=POLL, headers=h)).json()
    for action in ("open", "close", "reset"):
        assert (await client.post(f"/api/v1/polls/{poll['id']}/{action}", headers=h)).status == 200
    rows = await db.fetch("SELECT actor, action, object_id FROM audit_log WHERE action LIKE 'poll.%' ORDER BY id")
    assert [(r["actor"], r["action"]) for r in rows] == [("pro", f"poll.{a}") for a in
                                                         ("create", "open", "close", "reset")]
    assert {r["object_id"] for r in rows} == {poll["id"]}


async def test_first_admin_is_created_once(db) -> None:
    first = await users.bootstrap_admin(db)
    assert first is not None and await users.bootstrap_admin(db) is None
    found = await users.find(db, users.BOOTSTRAP_NAME)
    assert found is not None and found[0].role == "admin" and found[0].must_change_password
