"""Which document variant each kind of client gets (pure decision, no server)."""

from __future__ import annotations

import pytest

from hbbtv_apps.useragent import HTML5, LL_DASH_MPD, STANDARD_MPD, XHTML_DESKTOP, XHTML_HBBTV, Markup, live_mpd, pick

TV_1_0 = "Opera/9.80 (Linux mips; U; HbbTV/1.1.1 (; Philips; ; ; ; ) CE-HTML/1.0 NETTV/3.2.1; en) Presto/2.6.33"
TV_1_5 = "Mozilla/5.0 (Linux; U; en-US) AppleWebKit/533.3 (KHTML, like Gecko) HbbTV/1.2.1 (;Samsung;SmartTV2014;;;)"
TV_2_0 = "Mozilla/5.0 (Linux; Tizen 3.0) AppleWebKit/537.36 (KHTML, like Gecko) HbbTV/1.3.1 (+DRM;Samsung;SmartTV;;;)"
TV_2_0_2 = ("Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0 Safari/537.36 "
            "HbbTV/1.5.1 (; LGE; 2022; ; ; ;)")
TV_2_0_3 = ("Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0 Safari/537.36 "
            "HbbTV/1.6.1 (+DRM; Sony; BRAVIA; ; ; ;)")
TV_2_0_4 = "Mozilla/5.0 (Linux; Tizen 6.5) AppleWebKit/537.36 HbbTV/1.7.1 (;Samsung;SmartTV2023;;;)"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize(("ua", "markup", "ctype"), [
    (TV_1_0, Markup.XHTML, XHTML_HBBTV),
    (TV_1_5, Markup.XHTML, XHTML_HBBTV),
    (TV_2_0, Markup.HTML5, HTML5),
    (TV_2_0_2, Markup.HTML5, HTML5),
    (CHROME, Markup.XHTML, XHTML_DESKTOP),
    (FIREFOX, Markup.XHTML, XHTML_DESKTOP),
    ("HbbTV/1.x.1 (;;;)", Markup.HTML5, HTML5),          # malformed HbbTV token
    ("HbbTV", Markup.HTML5, HTML5),
    ("SmartTV Browser", Markup.HTML5, HTML5),
    ("curl/8.5.0", Markup.HTML5, HTML5),
    ("", Markup.HTML5, HTML5),
    (None, Markup.HTML5, HTML5),
    ("\x00\xff<script>", Markup.HTML5, HTML5),
])
def test_variant_by_user_agent(ua: str | None, markup: Markup, ctype: str) -> None:
    variant = pick(ua)
    assert variant.markup is markup
    assert variant.content_type == ctype


def test_exact_content_types() -> None:
    assert XHTML_HBBTV == "application/vnd.hbbtv.xhtml+xml; charset=UTF-8"
    assert XHTML_DESKTOP == "application/xhtml+xml; charset=UTF-8"
    assert HTML5 == "text/html; charset=UTF-8"
    assert pick(TV_1_5).hbbtv_version == (1, 2, 1)


@pytest.mark.parametrize(("ua", "mpd"), [
    (TV_1_0, STANDARD_MPD), (TV_1_5, STANDARD_MPD), (TV_2_0, STANDARD_MPD), (TV_2_0_2, STANDARD_MPD),
    (TV_2_0_3, LL_DASH_MPD), (TV_2_0_4, LL_DASH_MPD), (CHROME, STANDARD_MPD), ("HbbTV", STANDARD_MPD),
    (None, STANDARD_MPD),
])
def test_live_dash_by_hbbtv_version(ua: str | None, mpd: str) -> None:
    """LL-DASH (DVB A168) from HbbTV 2.0.3 (`HbbTV/1.6.1`) on; every other client the standard MPD."""
    assert live_mpd(pick(ua).hbbtv_version) == mpd
