"""One status per asset, in the catalogue: listings filter and page on it in SQL, and a running transcode moves
it (stage and a percent driven by ffmpeg's -progress) through the catalogue's progress hook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import PROGRESS_HOOKS, create_app
from onair.core import job_kinds
from onair.core.jobs import Job, JobContext, Resources
from onair.core.settings import Settings
from streaming import catalog
from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.ingest_tools import make_clip, upload, wait_for


@pytest.fixture
async def idle_client(settings: Settings) -> AsyncIterator[TestClient]:
    """The API without a job worker: queued transcodes stay queued while the test looks at them."""
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        yield c


async def _queued(db: asyncpg.Pool, title: str) -> tuple[str, int]:
    asset_id = catalog.new_asset_id()
    async with db.acquire() as conn, conn.transaction():
        await catalog.create_asset(conn, asset_id, title=title)
        job_id = await catalog.start_transcode(conn, asset_id, catalog.source_key(asset_id), 1000)
    return asset_id, job_id


async def _report(db: asyncpg.Pool, settings: Settings, job_id: int, progress: dict) -> None:
    """What the transcode handler does through its JobContext, with the hooks the app registers."""
    row = await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    ctx = JobContext(Job.from_row(row), Resources(settings, db), PROGRESS_HOOKS[job_kinds.TRANSCODE_ASSET])
    await ctx.report(progress, force=True)


async def test_status_filter_pages_in_sql(idle_client: TestClient, db: asyncpg.Pool, settings: Settings) -> None:
    queued = [(await _queued(db, f"Q{i}"))[0] for i in range(3)]
    # Newest of all: an asset whose transcode runs. Its row used to say 'queued' too (the stage lived in
    # jobs.progress), so `status=queued&limit=2` fetched it, dropped it after the LIMIT, and answered 1 item.
    running, job_id = await _queued(db, "Running")
    await _report(db, settings, job_id, {"stage": "transcoding", "percent": 40.0, "facts": {"width": 640}})

    resp = await idle_client.get("/api/v1/assets?status=queued&limit=2", headers=ADMIN)
    page = await resp.json()
    assert [a["id"] for a in page["items"]] == [queued[2], queued[1]]
    assert page["next"] is not None
    resp = await idle_client.get(f"/api/v1/assets?status=queued&limit=2&cursor={page['next']}", headers=ADMIN)
    assert [a["id"] for a in (await resp.json())["items"]] == [queued[0]]

    resp = await idle_client.get("/api/v1/assets?status=transcoding", headers=ADMIN)
    [item] = (await resp.json())["items"]
    assert (item["id"], item["status"], item["progress"], item["facts"]) == (running, "transcoding", 40.0,
                                                                              {"width": 640})
    body = await (await idle_client.get(f"/api/v1/assets/{running}", headers=ADMIN)).json()
    assert (body["status"], body["progress"]) == ("transcoding", 40.0)


async def test_only_the_assets_own_job_moves_it(idle_client: TestClient, db: asyncpg.Pool,
                                                settings: Settings) -> None:
    asset_id, first = await _queued(db, "Retried")
    async with db.acquire() as conn, conn.transaction():
        second = await catalog.start_transcode(conn, asset_id, catalog.source_key(asset_id), 1000)
    await _report(db, settings, first, {"stage": "packaging", "percent": 95.0})  # superseded: ignored
    assert (await catalog.get_asset(db, asset_id)).status == "queued"
    await _report(db, settings, second, {"stage": "probing", "percent": 0.0})
    assert (await catalog.get_asset(db, asset_id)).status == "probing"
    await catalog.mark_failed(db, asset_id, "bad input")
    await _report(db, settings, second, {"stage": "packaging", "percent": 100.0})  # late: a final state stays
    failed = await catalog.get_asset(db, asset_id)
    assert (failed.status, failed.error) == ("failed", "bad input")


async def test_running_transcode_lists_as_transcoding_with_moving_progress(client: TestClient, tmp_path) -> None:
    # Long enough for ffmpeg to print several -progress blocks (every 0.5 s) on a slow, shared CI core.
    clip = make_clip(tmp_path / "clip.mp4", size="1280x720", seconds=8).read_bytes()
    asset_id = await upload(client, clip, title="Moving")
    seen: list[float] = []
    async with asyncio.timeout(120):
        while True:
            resp = await client.get("/api/v1/assets?status=transcoding&limit=100", headers=ADMIN)
            for item in (await resp.json())["items"]:
                if item["id"] == asset_id and (not seen or item["progress"] != seen[-1]):
                    seen.append(item["progress"])
            body = await (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
            if body["status"] in ("packaging", "ready", "failed"):
                break
            await asyncio.sleep(0.05)
    assert all(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen) and len(seen) >= 3, seen  # moves, never backwards, not 2% then 90%
    assert (await wait_for(client, asset_id))["status"] == "ready"


async def test_listing_searches_full_text_and_filters_show_and_visibility(idle_client: TestClient,
                                                                         db: asyncpg.Pool) -> None:
    await make_asset(db, "harbour0001", title="Harbour fire at dawn", tags=("news",), show="Evening")
    await make_asset(db, "harbour0002", title="Market day", description="the harbour market", visibility="unlisted")
    await make_asset(db, "other000001", title="Cup final", show="Evening")

    async def ids(query: str) -> list[str]:
        resp = await idle_client.get(f"/api/v1/assets?{query}", headers=ADMIN)
        assert resp.status == 200, await resp.text()
        return sorted(a["id"] for a in (await resp.json())["items"])

    assert await ids("q=harbour") == ["harbour0001", "harbour0002"]  # title and description
    assert await ids("q=news") == ["harbour0001"]  # tags
    assert await ids("q=%22fire+at%22+OR+%27") == ["harbour0001"]  # any text is a query, never a 500
    assert await ids("show=Evening") == ["harbour0001", "other000001"]
    assert await ids("visibility=unlisted&q=harbour") == ["harbour0002"]
    assert (await idle_client.get("/api/v1/assets?visibility=secret", headers=ADMIN)).status == 400
