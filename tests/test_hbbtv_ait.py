"""XML AIT: every field checked against the rules of ETSI TS 102 809 as summarised in ARCHITECTURE.md."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from hbbtv_apps.ait import AitApp, AitError, build
from tests.conftest import ADMIN

MHP = "urn:dvb:mhp:2009"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
N = {"mhp": MHP}
CONTROL_CODES = {"AUTOSTART", "PRESENT", "DESTROY", "KILL", "PREFETCH", "REMOTE", "DISABLED", "PLAYBACK_AUTOSTART"}


def check_ait(xml: bytes) -> dict[str, str]:
    """Validate an XML AIT against the field rules; return its main values. Fails the test on any violation."""
    root = etree.fromstring(xml)  # well-formed, or this raises
    assert xml.startswith(b"<?xml")
    assert root.tag == f"{{{MHP}}}ServiceDiscovery"
    apps = root.findall("mhp:ApplicationDiscovery/mhp:ApplicationList/mhp:Application", N)
    assert len(apps) == 1
    app = apps[0]

    def one(path: str) -> str:
        found = app.findall(path, N)
        assert len(found) == 1, f"{path} must appear exactly once"
        return (found[0].text or "").strip()

    name = one("mhp:appName")
    assert name and len(app.find("mhp:appName", N).get("Language", "")) == 3
    org_id, app_id = int(one("mhp:applicationIdentifier/mhp:orgId")), int(one("mhp:applicationIdentifier/mhp:appId"))
    assert 1 <= org_id <= 0xFFFFFF
    assert 1 <= app_id <= 0x7FFF  # TS 102 809: 0x8000-0xFFFD reserved, 0xFFFE/0xFFFF wildcards
    d = "mhp:applicationDescriptor/"
    assert one(d + "mhp:type/mhp:OtherApp") in ("application/vnd.hbbtv.xhtml+xml", "text/html")
    control = one(d + "mhp:controlCode")
    assert control in CONTROL_CODES
    assert one(d + "mhp:visibility") in ("NOT_VISIBLE_ALL", "NOT_VISIBLE_USERS", "VISIBLE_ALL")
    assert one(d + "mhp:serviceBound") in ("true", "false")
    assert 0 <= int(one(d + "mhp:priority")) <= 255
    assert 0 <= int(one(d + "mhp:version")) <= 31
    for part in ("profile", "versionMajor", "versionMinor", "versionMicro"):
        assert one(f"{d}mhp:mhpVersion/mhp:{part}").isdigit()
    transport = app.find("mhp:applicationTransport", N)
    assert transport.get(f"{{{XSI}}}type") == "mhp:HTTPTransportType"
    url_base = one("mhp:applicationTransport/mhp:URLBase")
    location = one("mhp:applicationLocation")
    parts = urlsplit(url_base)
    assert parts.scheme in ("http", "https") and parts.netloc
    assert url_base.endswith("/")
    assert "://" not in location and not location.startswith("/")
    assert len(url_base + location) <= 2048
    return {"name": name, "org_id": str(org_id), "app_id": str(app_id), "control": control, "url": url_base + location,
            "version": one(d + "mhp:version")}


def test_builder_output_follows_the_rules() -> None:
    xml = build(AitApp(name="Quiz & <Friends>", org_id=0xFFFFFF, app_id=0x7FFF, url_base="http://tv.example/hbbtv/q/",
                       control_code="AUTOSTART", version=7))
    values = check_ait(xml)
    assert values == {"name": "Quiz & <Friends>", "org_id": str(0xFFFFFF), "app_id": str(0x7FFF),
                      "control": "AUTOSTART", "url": "http://tv.example/hbbtv/q/", "version": "07"}


@pytest.mark.parametrize("change", [
    {"org_id": 0}, {"org_id": 0x1000000}, {"app_id": 0}, {"app_id": 0x8000}, {"app_id": 0x9FFF}, {"app_id": 0xFFFF},
    {"control_code": "LAUNCH"},
    {"url_base": "http://tv.example/hbbtv/q"}, {"url_base": "/hbbtv/q/"}, {"url_base": "ftp://tv.example/"},
    {"location": "http://evil.example/"}, {"priority": 256}, {"version": 32}, {"visibility": "SOMETIMES"},
    {"url_base": "http://tv.example/" + "a" * 2040 + "/"},
])
def test_builder_refuses_values_a_receiver_would_reject(change: dict) -> None:
    fields = {"name": "Q", "org_id": 1, "app_id": 1, "url_base": "http://tv.example/hbbtv/q/"} | change
    with pytest.raises(AitError):
        build(AitApp(**fields))


async def test_studio_creates_an_app_and_downloads_its_ait(client: TestClient) -> None:
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "quiz", "name": "Evening Quiz", "org_id": 0x17, "app_id": 0x10, "control_code": "AUTOSTART"})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["ait"].endswith("/hbbtv/quiz/app.aitx")

    resp = await client.get("/hbbtv/quiz/app.aitx")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.dvb.ait+xml"
    values = check_ait(await resp.read())
    assert values["name"] == "Evening Quiz" and values["org_id"] == "23" and values["app_id"] == "16"
    assert values["control"] == "AUTOSTART"
    assert values["url"] == f"http://{client.server.host}:{client.server.port}/hbbtv/quiz/"
    assert values["version"] == "00"

    download = await client.get("/hbbtv/quiz/app.aitx?download=1")
    assert download.headers["Content-Disposition"] == 'attachment; filename="quiz.aitx"'

    # a change to the app is a new AIT version, so receivers re-read the signalling
    resp = await client.patch("/api/v1/hbbtv/apps/quiz", headers=ADMIN, json={"control_code": "PRESENT"})
    assert resp.status == 200
    values = check_ait(await (await client.get("/hbbtv/quiz/app.aitx")).read())
    assert values["control"] == "PRESENT" and values["version"] == "01"


async def test_ait_of_unknown_app_is_404(client: TestClient) -> None:
    resp = await client.get("/hbbtv/nope/app.aitx")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_ait_url_base_follows_the_public_url(settings) -> None:
    from aiohttp.test_utils import TestServer

    from onair.app import create_app

    app = create_app(settings.with_(public_url="https://tv.example.com/"), settings.database_url or "",
                     run_worker=False)
    async with TestClient(TestServer(app)) as c:
        body = {"slug": "late", "name": "Late", "org_id": 1, "app_id": 1}
        assert (await c.post("/api/v1/hbbtv/apps", headers=ADMIN, json=body)).status == 201
        values = check_ait(await (await c.get("/hbbtv/late/app.aitx")).read())
        assert values["url"] == "https://tv.example.com/hbbtv/late/"


async def test_an_app_saved_with_a_reserved_id_gets_a_409_not_a_500(client: TestClient, db) -> None:
    body = {"slug": "old", "name": "Old", "org_id": 1, "app_id": 1}
    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json=body)).status == 201
    await db.execute("UPDATE hbbtv_apps SET app_id = $1 WHERE slug = 'old'", 0x9000)  # saved under the old limit
    resp = await client.get("/hbbtv/old/app.aitx")
    assert resp.status == 409 and resp.content_type == "application/problem+json"
    assert "appId" in (await resp.json())["detail"]
