"""Shows as objects: the producers' API, polls attached to a show, and the free-text migration."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from onair.core.db.migrate import migrate
from tests.accounts_helpers import login, make_user
from tests.conftest import ADMIN

SHOW = {"slug": "evening-news", "title": "Evening News", "description": "The day's news.",
        "schedule": "Weekdays 19:00"}


async def test_producers_create_shows_and_attach_what_they_run(client: TestClient, db: asyncpg.Pool) -> None:
    resp = await client.post("/api/v1/shows", json=SHOW)
    assert resp.status == 401
    resp = await client.post("/api/v1/shows", json=SHOW, headers=ADMIN)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["page"] == "/s/evening-news" and body["chat_room"] == "show-evening-news" and body["poll"] is None
    dup = await client.post("/api/v1/shows", json=SHOW, headers=ADMIN)
    assert dup.status == 409 and (await dup.json())["type"].endswith("show-exists")
    bad = await client.post("/api/v1/shows", json={**SHOW, "slug": "Evening News"}, headers=ADMIN)
    assert bad.status in (400, 422) and "slug" in (await bad.text())

    # a poll created with the show's slug is linked; another is attached afterwards
    first = await (await client.post("/api/v1/polls", json={"question": "Q1?", "options": ["a", "b"],
                                                             "show": "evening-news"}, headers=ADMIN)).json()
    shown = await (await client.get("/api/v1/shows/evening-news")).json()
    assert shown["poll"]["id"] == first["id"] and shown["poll"]["status"] == "draft"
    other = await (await client.post("/api/v1/polls", json={"question": "Q2?", "options": ["x", "y"]},
                                     headers=ADMIN)).json()
    resp = await client.post("/api/v1/shows/evening-news/polls", json={"poll_id": other["id"]}, headers=ADMIN)
    assert resp.status == 200
    await client.post(f"/api/v1/polls/{first['id']}/open", headers=ADMIN)
    shown = await (await client.get("/api/v1/shows/evening-news")).json()
    assert shown["poll"]["id"] == first["id"] and shown["poll"]["status"] == "open"  # open wins over newer drafts
    missing = await client.post("/api/v1/shows/evening-news/polls", json={"poll_id": "pnope"}, headers=ADMIN)
    assert missing.status == 404

    resp = await client.patch("/api/v1/shows/evening-news", json={"live_channel": "ch1", "chat_room": "news",
                                                                   "hbbtv_app": "news-app"}, headers=ADMIN)
    body = await resp.json()
    assert (body["live_channel"], body["chat_room"], body["hbbtv_app"]) == ("ch1", "news", "news-app")
    body = await (await client.patch("/api/v1/shows/evening-news", json={"live_channel": None},
                                     headers=ADMIN)).json()
    assert body["live_channel"] is None and body["chat_room"] == "news"
    assert [s["slug"] for s in (await (await client.get("/api/v1/shows")).json())["shows"]] == ["evening-news"]
    assert (await client.get("/api/v1/shows/nope")).status == 404

    # producers may; moderators may not
    await make_user(db, "pat", "producer")
    await make_user(db, "mo", "moderator")
    csrf = await login(client, "pat")
    resp = await client.post("/api/v1/shows", json={**SHOW, "slug": "quiz"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()
    client.session.cookie_jar.clear()
    csrf = await login(client, "mo")
    resp = await client.post("/api/v1/shows", json={**SHOW, "slug": "quiz2"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    assert (await client.delete("/api/v1/shows/quiz", headers=ADMIN)).status == 204


async def test_free_text_shows_of_polls_and_assets_become_shows(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:  # back to the schema before shows existed, with free-text values, then migrate again
        await conn.execute("DROP TABLE pairings; ALTER TABLE polls DROP COLUMN show_slug; DROP TABLE shows; "
                           "DELETE FROM schema_migrations WHERE version IN ('0720', '0721')")
        await conn.execute("INSERT INTO polls (id, question, options, show) VALUES "
                           "('p1', 'Q?', '[]', 'Evening News!'), ('p2', 'Q?', '[]', NULL)")
        await conn.execute("INSERT INTO assets (id, title, show) VALUES ('a1', 'clip', 'Quiz Night')")
        assert await migrate(conn) == ["0720_shows", "0721_pairings"]
        found = {r["slug"]: r["title"] for r in await conn.fetch("SELECT slug, title FROM shows")}
        assert found == {"evening-news": "Evening News!", "quiz-night": "Quiz Night"}
        linked = {r["id"]: r["show_slug"] for r in await conn.fetch("SELECT id, show_slug FROM polls")}
        assert linked == {"p1": "evening-news", "p2": None}
    finally:
        await conn.close()
