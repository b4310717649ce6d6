"""Personal API tokens: made in a session, shown once, stored hashed; a token acts as its user within its
scopes, cannot touch its own account, and stops at revocation or when its user is disabled."""

from __future__ import annotations

import hashlib

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import login, make_user
from tests.conftest import ADMIN


def own(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"}


async def test_token_acts_within_its_scopes_and_its_role(client: TestClient, db) -> None:
    await make_user(db, "ed", "editor")
    h = {**own(client), "X-CSRF-Token": await login(client, "ed")}
    listing = await (await client.get("/api/v1/me/tokens")).json()
    assert "assets:read" in listing["grantable"] and "polls:write" not in listing["grantable"]
    resp = await client.post("/api/v1/me/tokens", json={"name": "nightly", "scopes": ["polls:write"]}, headers=h)
    assert resp.status == 400 and "scopes" in (await resp.json())["detail"]  # beyond the role
    resp = await client.post("/api/v1/me/tokens", json={"name": "nightly", "scopes": ["assets:read"]}, headers=h)
    assert resp.status == 201
    made = await resp.json()
    token = made["token"]
    assert token.startswith("onair_pat_") and token.startswith(made["prefix"])
    stored = await db.fetchval("SELECT token_hash FROM api_tokens WHERE id = $1", made["id"])
    assert stored == hashlib.sha256(token.encode()).digest()  # never the token itself
    listed = (await (await client.get("/api/v1/me/tokens")).json())["tokens"]
    assert [t["name"] for t in listed] == ["nightly"] and "token" not in listed[0]

    script = client  # the session cookie stays in the jar, but a bearer header decides alone
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await script.get("/api/v1/assets", headers=bearer)).status == 200
    resp = await script.post("/api/v1/assets", headers=bearer, json={"source_url": "https://example.com/a.mp4"})
    assert resp.status == 403 and (await resp.json())["type"].endswith("scope-denied")
    resp = await script.post("/api/v1/polls", headers=bearer, json={"question": "Q?", "options": ["a", "b"]})
    assert resp.status == 403  # not the editor's to grant, whatever the token says
    assert (await script.get("/api/v1/me", headers=bearer)).status == 200
    resp = await script.post("/api/v1/me/tokens", headers=bearer, json={"name": "x", "scopes": ["assets:read"]})
    assert resp.status == 403  # a token cannot mint tokens or change the account
    resp = await script.post("/api/v1/me/password", headers=bearer,
                             json={"current_password": "a", "new_password": "b" * 12})
    assert resp.status == 403
    assert (await script.get("/api/v1/assets", headers={"Authorization": "Bearer onair_pat_forged"})).status == 401

    assert await db.fetchval("SELECT last_used_at IS NOT NULL FROM api_tokens WHERE id = $1", made["id"])
    assert (await client.patch("/api/v1/users/ed", json={"disabled": True}, headers=ADMIN)).status == 200
    assert (await script.get("/api/v1/assets", headers=bearer)).status == 401  # a disabled user's too
    assert (await client.patch("/api/v1/users/ed", json={"disabled": False}, headers=ADMIN)).status == 200
    assert (await script.get("/api/v1/assets", headers=bearer)).status == 200

    h = {**own(client), "X-CSRF-Token": await login(client, "ed")}
    assert (await client.delete(f"/api/v1/me/tokens/{made['id']}", headers=h)).status == 204
    assert (await script.get("/api/v1/assets", headers=bearer)).status == 401
    assert (await client.delete("/api/v1/me/tokens/999999", headers=h)).status == 404
    actions = [e["action"] for e in (await (await client.get("/api/v1/audit", headers=ADMIN)).json())["entries"]]
    assert "token.create" in actions and "token.revoke" in actions
    assert (await client.get("/api/v1/me/tokens", headers=ADMIN)).status == 403  # the admin token has no account
