"""Red-button storm: the "press red" prompt appears on air and a fraction of the TVs tuned in load the HbbTV
app within seconds: the AIT, the app document (HbbTV 1.x or 2.x by User-Agent), then its scripts and styles.

Needs LOADTEST_APP_SLUG (run.py registers an app through POST /api/v1/hbbtv/apps).
Target: p99 of the app document <= 200 ms.
"""

from __future__ import annotations

import random
import re

import gevent
from _shared import COUNTERS, DURATION, USERS, elapsed, env_float, env_str, jitter
from locust import LoadTestShape, constant, task
from locust.contrib.fasthttp import FastHttpUser

SLUG = env_str("APP_SLUG", "show")
RAMP = env_float("RAMP", max(2.0, DURATION * 0.2))
PROMPT_AT = env_float("PROMPT_AT", RAMP + 1.0)   # the prompt goes on air
STORM = env_float("STORM", 5.0)                  # the TVs that react do so within this many seconds
FRACTION = env_float("FRACTION", 0.5)            # share of tuned-in TVs that press red
USER_AGENTS = (
    "Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) HbbTV/1.2.1 (+DRM;Samsung;SmartTV2015;"
    "T-HKM6DEUC-1490.3;;) OsrsBrowser/1.0",
    "Mozilla/5.0 (Linux; Tizen 5.0) AppleWebKit/537.36 HbbTV/1.4.1 (+DRM;Samsung;SmartTV2019;;;) Chrome/69",
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 HbbTV/1.5.1 (+DRM; LGE; 65UM7400PLB; ;;) Chrome/79",
    "Opera/9.80 (Linux mips; U; HbbTV/1.1.1 (; Philips; ; ; ; ) CE-HTML/1.0 NETTV/3.2.1; en) Presto/2.6.33",
)
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"'#?]+\.(?:js|css))["']""", re.I)


class Television(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.ua = random.choice(USER_AGENTS)
        self.presses = random.random() < FRACTION
        self.press_at = PROMPT_AT + jitter(STORM)
        self.done = False

    @task
    def tv(self) -> None:
        if self.done or not self.presses:
            gevent.sleep(max(DURATION - elapsed(), 0.1))  # an idle TV costs the origin nothing
            return
        wait = self.press_at - elapsed()
        if wait > 0:
            gevent.sleep(wait)
        headers = {"User-Agent": self.ua}
        self.client.get(f"/hbbtv/{SLUG}/app.aitx", headers=headers, name="GET /hbbtv/{app}/app.aitx")
        with self.client.get(f"/hbbtv/{SLUG}/", headers=headers, name="GET /hbbtv/{app}/ (document)",
                             catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"app document: {resp.status_code}")
                self.done = True
                return
            COUNTERS["app_documents"] += 1
            page = resp.text or ""
        for ref in dict.fromkeys(ASSET.findall(page)):  # each script/style once, in page order
            url = ref if ref.startswith("/") else f"/hbbtv/{SLUG}/{ref}"
            if "://" in ref:
                continue  # never leave the target host
            self.client.get(url, headers=headers, name="GET /hbbtv/{app} scripts+styles")
        self.done = True


class RedButtonShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= DURATION:
            return None
        return USERS, max(USERS / RAMP, 1.0)
