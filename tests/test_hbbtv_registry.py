"""The app registry API: what the studio can create, and what it may not."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN

APPS = "/api/v1/hbbtv/apps"
BASE = {"slug": "morning", "name": "Morning Show", "org_id": 4660, "app_id": 1}


async def _problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def test_create_read_update_delete(client: TestClient) -> None:
    resp = await client.post(APPS, headers=ADMIN, json={**BASE, "poll_id": 42, "chat_room": "morning-chat",
                                                          "colours": {"primary": "#112233"}, "logo_url": "/logo.png"})
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == f"{APPS}/morning"
    app = await resp.json()
    assert app["poll_id"] == "42" and app["control_code"] == "PRESENT" and app["vod_assets"] == []
    assert app["colours"]["primary"] == "#112233" and app["colours"]["text"] == "#ffffff"
    assert app["url"].endswith("/hbbtv/morning/")

    assert (await (await client.get(f"{APPS}/morning", headers=ADMIN)).json())["name"] == "Morning Show"
    listed = await (await client.get(APPS, headers=ADMIN)).json()
    assert [a["slug"] for a in listed["apps"]] == ["morning"]

    resp = await client.patch(f"{APPS}/morning", headers=ADMIN, json={"name": "Breakfast", "chat_room": None,
                                                                       "control_code": "AUTOSTART"})
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert (patched["name"], patched["chat_room"], patched["control_code"]) == ("Breakfast", None, "AUTOSTART")
    assert patched["poll_id"] == "42" and patched["ait_version"] == 1

    assert (await client.delete(f"{APPS}/morning", headers=ADMIN)).status == 204
    await _problem(await client.get(f"{APPS}/morning", headers=ADMIN), 404)
    await _problem(await client.delete(f"{APPS}/morning", headers=ADMIN), 404)


async def test_registry_needs_the_admin_token(client: TestClient) -> None:
    await _problem(await client.post(APPS, json=BASE), 401)
    await _problem(await client.get(APPS, headers={"Authorization": "Bearer wrong"}), 401)
    await _problem(await client.patch(f"{APPS}/morning", json={"name": "x"}), 401)


@pytest.mark.parametrize("bad", [
    {"org_id": 0}, {"org_id": 0x1000000}, {"org_id": -5}, {"app_id": 0}, {"app_id": 0x8000}, {"app_id": 0xA000},
    {"app_id": "one"},
    {"slug": "Bad Slug"}, {"slug": "static/../x"}, {"slug": ""}, {"name": ""}, {"control_code": "KILL"},
    {"colours": {"primary": "red"}}, {"logo_url": "javascript:alert(1)"}, {"logo_url": "//evil.example/x.png"},
    {"chat_room": "a room"}, {"poll_id": True}, {"unexpected": 1}, {"vod_assets": ["x"] * 51},
])
async def test_bad_fields_are_rejected_at_creation(client: TestClient, bad: dict) -> None:
    body = await _problem(await client.post(APPS, headers=ADMIN, json={**BASE, **bad}), 400)
    assert body["type"].endswith("invalid-body")


async def test_out_of_range_ids_rejected_on_update_too(client: TestClient) -> None:
    assert (await client.post(APPS, headers=ADMIN, json=BASE)).status == 201
    await _problem(await client.patch(f"{APPS}/morning", headers=ADMIN, json={"app_id": 0x8000}), 400)
    await _problem(await client.patch(f"{APPS}/morning", headers=ADMIN, json={"name": None}), 400)


async def test_conflicts_and_unknown_clips(client: TestClient) -> None:
    assert (await client.post(APPS, headers=ADMIN, json=BASE)).status == 201
    await _problem(await client.post(APPS, headers=ADMIN, json={**BASE, "app_id": 2}), 409)
    await _problem(await client.post(APPS, headers=ADMIN, json={**BASE, "slug": "other"}), 409)
    body = await _problem(await client.post(APPS, headers=ADMIN, json={**BASE, "slug": "clips", "app_id": 3,
                                                                           "vod_assets": ["nosuchasset"]}), 400)
    assert "nosuchasset" in body["detail"]


async def test_not_json_is_a_clean_400(client: TestClient) -> None:
    resp = await client.post(APPS, headers={**ADMIN, "Content-Type": "application/json"}, data=b"{not json")
    await _problem(resp, 400)
