"""Bans, the word filter and flood detection compare folded text: full-width, case, accents, look-alike
Cyrillic/Greek letters and punctuation do not get around them."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from streaming.interaction.textfold import flood_key, fold, mask_words
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.test_chat import device, say

FULLWIDTH_TROLL = "\uff34\uff32\uff2f\uff2c\uff2c"      # TROLL in full-width letters
CYRILLIC_O_TROLL = "tr\u043ell"                         # a Cyrillic o
GREEK_TROLL = "\u03c4r\u03bfll"                         # Greek tau and omicron
ZERO_WIDTH_TROLL = "tr\u200boll"


def test_fold() -> None:
    for variant in ("troll", "TROLL", FULLWIDTH_TROLL, CYRILLIC_O_TROLL, GREEK_TROLL, ZERO_WIDTH_TROLL,
                    "tr\u00f6ll", "t\u0072\u006f\u0308ll"):
        assert fold(variant) == "troll", variant
    assert flood_key("BUY NOW.") == flood_key("buy   now!!") == flood_key("\uff22\uff35\uff39 now") == "buy now"
    assert mask_words(f"you {CYRILLIC_O_TROLL}!", ["troll"]) == "you *****!"
    assert mask_words(f"{FULLWIDTH_TROLL} trolling", ["Troll"]) == "***** trolling"  # whole words only


async def test_bans_and_word_filter_see_through_lookalikes(client: TestClient) -> None:
    await open_room(client, "fold")
    dev = await device(client)
    await say(client, "fold", dev, "hello", nick="troll")
    resp = await client.post("/api/v1/chat/fold/bans", json={"nickname": "Troll", "minutes": 5}, headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()
    for i, nick in enumerate((FULLWIDTH_TROLL, CYRILLIC_O_TROLL, GREEK_TROLL)):
        other = await device(client)
        body = await say(client, "fold", other, f"back again {i}", nick=nick, status=403)
        assert body["type"].endswith("/banned")
    patched = await client.patch("/api/v1/chat/fold2", json={"words": ["darn"]}, headers=ADMIN)
    assert patched.status == 200, await patched.text()
    msg = await say(client, "fold2", await device(client), "oh \uff24\uff41\uff52\uff4e it, d\u0430rn")
    assert msg["text"] == "oh **** it, ****"


async def test_flood_survives_trivial_variations(client: TestClient) -> None:
    texts = ["BUY NOW", "BUY NOW.", "buy now!!", "\uff22\uff35\uff39 NOW"]
    await open_room(client, "flood")
    for text in texts[:3]:  # three devices may say it (flood_devices = 3) ...
        await say(client, "flood", await device(client), text)
    body = await say(client, "flood", await device(client), texts[3], status=409)  # ... the fourth is a flood
    assert body["type"].endswith("/flood")
