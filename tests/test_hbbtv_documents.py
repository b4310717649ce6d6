"""The app document per client, its static files (ES5 only, <= 100 KB in all), banners and state."""

from __future__ import annotations

import re

import asyncpg
import esprima
import pyjsparser
import pytest
from aiohttp.test_utils import TestClient
from lxml import etree, html

from tests.conftest import ADMIN
from tests.helpers import make_asset

XHTML_NS = "http://www.w3.org/1999/xhtml"
TV_1 = "Mozilla/5.0 (Linux; U; en-US) AppleWebKit/533.3 (KHTML, like Gecko) HbbTV/1.1.1 (;Philips;TV;;;)"
TV_15 = "Opera/9.80 (Linux mips; U; HbbTV/1.2.1 (; Sony; KDL32; 1.0; ;) CE-HTML/1.0; en) Presto/2.12"
TV_2 = "Mozilla/5.0 (Linux; Tizen 3.0) AppleWebKit/537.36 (KHTML, like Gecko) HbbTV/1.4.1 (+DRM;Samsung;SmartTV;;;)"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
WEIGHT_LIMIT = 100 * 1024

FORBIDDEN_KEYWORDS = {"let", "const", "class", "async", "await", "yield", "import", "export"}
FORBIDDEN_PUNCTUATORS = {"=>", "...", "**", "?.", "??"}
FORBIDDEN_GLOBALS = {"Promise", "fetch", "Symbol", "Map", "Set", "WeakMap", "Proxy", "Reflect", "requestIdleCallback"}


def es5_violations(source: str) -> list[str]:
    """ES5.1 grammar (pyjsparser rejects arrows, classes, templates...) plus a token scan for what it lets by."""
    problems = []
    try:
        pyjsparser.parse(source)
    except Exception as err:  # pyjsparser raises its own JsSyntaxError
        problems.append(f"not ES5: {err}")
    for token in esprima.tokenize(source):
        if token.type == "Keyword" and token.value in FORBIDDEN_KEYWORDS:
            problems.append(f"keyword {token.value}")
        elif token.type == "Identifier" and token.value in FORBIDDEN_KEYWORDS | FORBIDDEN_GLOBALS:
            problems.append(f"identifier {token.value}")
        elif token.type == "Punctuator" and token.value in FORBIDDEN_PUNCTUATORS:
            problems.append(f"punctuator {token.value}")
        elif token.type == "Template":
            problems.append("template literal")
    return problems


@pytest.mark.parametrize("snippet", ["var f = () => 1;", "let a = 1;", "const b = 2;", "class A {}",
                                     "fetch('/x');", "new Promise(function () {});", "var s = `x`;",
                                     "var o = {...p};"])
def test_es5_checker_catches_later_syntax(snippet: str) -> None:
    assert es5_violations(snippet), snippet


async def _make_app(client: TestClient, **fields) -> dict:
    body = {"slug": "show", "name": "The Show", "org_id": 4660, "app_id": 1, "poll_id": "1", "chat_room": "show"}
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={**body, **fields})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _add_asset(db: asyncpg.Pool, asset_id: str, title: str, status: str = "ready") -> None:
    await make_asset(db, asset_id, title=title, status=status,
                     outputs={"dash": "dash/manifest.mpd", "hls": "hls/master.m3u8"})


@pytest.mark.parametrize("ua", [TV_1, TV_15])
async def test_hbbtv_1x_gets_well_formed_xhtml_with_exact_headers(client: TestClient, ua: str) -> None:
    await _make_app(client)
    resp = await client.get("/hbbtv/show/", headers={"User-Agent": ua})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.hbbtv.xhtml+xml; charset=UTF-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    raw = await resp.read()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//HbbTV//1.1.1//EN"')
    tree = etree.fromstring(raw).getroottree()   # raises unless well-formed
    assert tree.docinfo.public_id == "-//HbbTV//1.1.1//EN"
    root = tree.getroot()
    assert root.tag == f"{{{XHTML_NS}}}html"
    types = {o.get("type") for o in root.iter(f"{{{XHTML_NS}}}object")}
    assert {"application/oipfApplicationManager", "application/oipfConfiguration", "video/broadcast"} <= types
    # OIPF objects sit in a zero-size container that is hidden but never display:none
    assert "display:none" not in raw.decode().replace(" ", "")


def xhtml1_violations(root: etree._Element) -> list[str]:
    """The rules of the XHTML 1.0 DTD (which the HbbTV 1.x DTD extends) our templates could break; no offline
    copy of the DTD is available to the tests, so these are checked by hand."""
    found = []
    x = f"{{{XHTML_NS}}}"
    for el in root.iter(f"{x}*"):
        tag = el.tag.removeprefix(x)
        found += [f"<{tag} {name}>: data-* attributes are not in the DTD" for name in el.attrib
                  if name.startswith("data-")]
        if tag in ("ul", "ol") and (len(el) == 0 or any(c.tag != f"{x}li" for c in el)):
            found.append(f"<{tag} id={el.get('id')}> must hold one or more <li> and nothing else")
        if tag == "meta" and el.getparent().tag != f"{x}head":
            found.append("<meta> outside <head>")
    return found


@pytest.mark.parametrize(("vod", "mhp"), [(False, "1.1.1"), (True, "1.2.1")])
async def test_xhtml_document_keeps_to_the_dtd_and_the_ait_signals_what_the_app_needs(
        client: TestClient, db: asyncpg.Pool, vod: bool, mhp: str) -> None:
    if vod:
        await _add_asset(db, "clipone", "Goals")
    await _make_app(client, vod_assets=["clipone"] if vod else [], poll_id=None, chat_room=None)
    raw = await (await client.get("/hbbtv/show/", headers={"User-Agent": TV_1})).read()
    root = etree.fromstring(raw)
    assert xhtml1_violations(root) == []
    assert (root.find(f".//{{{XHTML_NS}}}ul[@id='vod-list']") is not None) == vod
    ait = etree.fromstring(await (await client.get("/hbbtv/show/app.aitx")).read())
    version = ".".join(ait.findtext(f".//{{urn:dvb:mhp:2009}}mhpVersion/{{urn:dvb:mhp:2009}}{part}")
                       for part in ("versionMajor", "versionMinor", "versionMicro"))
    assert version == mhp   # DASH clips need HbbTV 1.5 (mhpVersion 1.2.1); a 1.0 terminal does not start the app


async def test_hbbtv_2x_and_unknown_clients_get_html5(client: TestClient) -> None:
    await _make_app(client)
    for ua in (TV_2, "HbbTV/2.x (broken)", "curl/8", ""):
        resp = await client.get("/hbbtv/show/", headers={"User-Agent": ua})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=UTF-8", ua
        assert resp.headers["Cache-Control"] == "no-cache"
        text = await resp.text()
        assert text.startswith("<!DOCTYPE html>\n") and "<?xml" not in text
        doc = html.document_fromstring(text)
        assert doc.get_element_by_id("overlay") is not None and doc.get_element_by_id("prompt") is not None


async def test_desktop_preview_is_application_xhtml(client: TestClient) -> None:
    await _make_app(client)
    resp = await client.get("/hbbtv/show/", headers={"User-Agent": CHROME})
    assert resp.headers["Content-Type"] == "application/xhtml+xml; charset=UTF-8"
    etree.fromstring(await resp.read())
    assert (await client.get("/hbbtv/show", allow_redirects=False)).headers["Location"] == "/hbbtv/show/"


@pytest.mark.parametrize("ua", [TV_1, TV_2, CHROME])
async def test_unknown_app_is_404_with_a_body_tvs_can_parse(client: TestClient, ua: str) -> None:
    resp = await client.get("/hbbtv/no-such-app/", headers={"User-Agent": ua})
    assert resp.status == 404
    raw = await resp.read()
    root = etree.fromstring(raw)
    assert root.tag == f"{{{XHTML_NS}}}html" and b"not available" in raw
    assert resp.headers["Content-Type"] != "application/problem+json"
    resp = await client.get("/hbbtv/..%2Fetc/", headers={"User-Agent": ua})
    assert resp.status == 404


async def test_user_text_is_escaped(client: TestClient, db: asyncpg.Pool) -> None:
    name = '<script>alert("x")</script> & Friends\'s'
    await _add_asset(db, "clipone", "Goals & <b>saves</b>")
    await _add_asset(db, "clipwait", "Not ready", status="transcoding")
    await _make_app(client, name=name, vod_assets=["clipone", "clipwait"])
    for ua in (TV_1, TV_2):
        raw = await (await client.get("/hbbtv/show/", headers={"User-Agent": ua})).read()
        assert b"<script>alert" not in raw and b"<b>saves" not in raw
        doc = html.document_fromstring(raw)
        assert doc.findtext(".//title") == name
        items = doc.get_element_by_id("vod-list").findall("li")
        mpds = [m.get("content") for m in doc.iter("meta") if m.get("name") == "onair:vod"]
        assert [li.text for li in items] == ["Goals & <b>saves</b>"]   # the clip not yet ready is left out
        assert mpds == ["/media/clipone/dash/manifest.mpd"]


async def _served_files(client: TestClient, ua: str) -> dict[str, bytes]:
    resp = await client.get("/hbbtv/show/", headers={"User-Agent": ua})
    raw = await resp.read()
    files = {"/hbbtv/show/": raw}
    doc = html.document_fromstring(raw)
    urls = [el.get("src") for el in doc.iter("script", "img", "iframe") if el.get("src")]
    urls += [el.get("href") for el in doc.iter("link") if el.get("href")]
    for url in urls:
        assert url.startswith("/"), f"{url} is not same-origin"
        got = await client.get(url)
        assert got.status == 200, url
        files[url] = await got.read()
        if url.startswith("/hbbtv/static/"):
            assert re.match(r"^/hbbtv/static/[0-9a-f]{12}/", url)
            assert got.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    return files


@pytest.mark.parametrize("ua", [TV_1, TV_2])
async def test_every_served_script_is_es5_and_the_app_weighs_under_100kb(client: TestClient, ua: str) -> None:
    await _make_app(client)
    files = await _served_files(client, ua)
    scripts = [u for u in files if u.endswith(".js")]
    assert scripts, "the document loads no script"
    for url in scripts:
        source = files[url].decode("utf-8")
        assert es5_violations(source) == [], url
        # same-origin only: no absolute URLs to other hosts in the app code
        assert not re.search(r"https?://", source), url
    inline = html.document_fromstring(files["/hbbtv/show/"]).xpath("//script[not(@src)]/text()")
    for source in inline:
        assert es5_violations(source) == []
    total = sum(len(body) for body in files.values())
    print(f"HbbTV app weight for {ua.split('HbbTV/')[1][:5]}: {total} bytes")
    assert total <= WEIGHT_LIMIT


async def test_static_files_need_the_current_hash(client: TestClient) -> None:
    await _make_app(client)
    files = await _served_files(client, TV_1)
    js = next(u for u in files if u.endswith("app.js"))
    stale = re.sub(r"/static/[0-9a-f]{12}/", "/static/000000000000/", js)
    assert (await client.get(stale)).status == 404
    assert (await client.get(js.replace("app.js", "nope.js"))).status == 404
    etag = (await client.get(js)).headers["ETag"]
    assert (await client.get(js, headers={"If-None-Match": etag})).status == 304


async def test_banner_is_picked_up_by_the_state_poll_and_clicks_are_counted(client: TestClient) -> None:
    await _make_app(client)
    state = await (await client.get("/hbbtv/show/state.json")).json()
    assert state["banner"] is None and state["poll_id"] == "1" and state["interval_ms"] > 0
    resp = await client.post("/api/v1/hbbtv/apps/show/banners", headers=ADMIN, json={
        "image_url": "/hbbtv/static/ad.png", "target_url": "https://shop.example/offer?a=1&b=2", "label": "Win <now>",
        "duration_s": 30})
    assert resp.status == 201, await resp.text()
    banner = await resp.json()
    state = await (await client.get("/hbbtv/show/state.json")).json()
    assert state["banner"]["id"] == banner["id"] and state["banner"]["label"] == "Win <now>"
    for tv in ("TV-A", "TV-B", "TV-A"):  # two TVs; the repeat click of the first is not counted again
        resp = await client.post(f"/hbbtv/show/banners/{banner['id']}/clicks", headers={"User-Agent": tv})
        assert resp.status == 204
    counted = await (await client.get(f"/api/v1/hbbtv/apps/show/banners/{banner['id']}", headers=ADMIN)).json()
    assert counted["clicks"] == 2
    assert (await client.post("/hbbtv/show/banners/999999/clicks")).status == 404
    assert (await client.post("/hbbtv/show/banners/abc/clicks")).status == 404
    assert (await client.delete("/api/v1/hbbtv/apps/show/banners", headers=ADMIN)).status == 204
    assert (await (await client.get("/hbbtv/show/state.json")).json())["banner"] is None


@pytest.mark.parametrize("bad", [{"image_url": "javascript:x", "target_url": "/x"},
                                 {"image_url": "/a.png", "target_url": "data:text/html,x"},
                                 {"image_url": "/a.png", "target_url": "/x", "duration_s": 0}])
async def test_bad_banners_are_400(client: TestClient, bad: dict) -> None:
    await _make_app(client)
    resp = await client.post("/api/v1/hbbtv/apps/show/banners", headers=ADMIN, json=bad)
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    assert (await client.post("/api/v1/hbbtv/apps/show/banners", json=bad)).status == 401


async def test_studio_registry_page_is_part_of_the_studio(client: TestClient) -> None:
    # The registry is edited in the studio's Shows section (a desktop page); only TV documents must be ES5.
    resp = await client.get("/studio/hbbtv/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/studio/shows#hbbtv"
