"""Run Debian's nginx with deploy/nginx/ (templated into a temp folder) in front of an onair origin.

Shared by tests/test_nginx_cache.py, tests/test_origin_offload.py and bench/bench_origin.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tools import free_port, port_open

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)


def render(prefix: Path, origin: str, listen: str, *, workers: int = 1, extra: str = "",
           site: str = "onair-cdn.conf", objects: Path | None = None,
           edit: Callable[[str, str], str] | None = None) -> Path:
    """The config files with placeholders filled; `edit(name, text)` may change a file (e.g. a variant measured)."""
    values = {"PREFIX": str(prefix), "CACHE_DIR": str(prefix / "cache"), "DECISIONS": str(prefix / "decisions"),
              "INNER": f"127.0.0.1:{free_port()}",
              "ORIGIN": origin, "LISTEN": listen,
              "WORKERS": str(workers), "EXTRA": extra, "SITE": site,
              "OBJECTS": f"{objects}/" if objects is not None else "",
              # as root, workers would drop to 'nobody' and lose access to pytest's private temp dirs
              "USER": "user root;" if os.geteuid() == 0 else ""}
    for name in ("nginx.conf", site):
        text = (DEPLOY / name).read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        (prefix / name).write_text(edit(name, text) if edit else text)
    return prefix / "nginx.conf"


@contextmanager
def running_nginx(binary: str, prefix: Path, origin: str, *, workers: int = 1, extra: str = "",
                  site: str = "onair-cdn.conf", objects: Path | None = None,
                  edit: Callable[[str, str], str] | None = None) -> Iterator[str]:
    """Start nginx on a free loopback port; yield its base URL. `site` is the deploy/nginx file to serve
    (the caching CDN, or onair-offload.conf with `objects` = the data dir's objects/ folder)."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = render(prefix, origin, f"127.0.0.1:{port}", workers=workers, extra=extra, site=site, objects=objects,
                  edit=edit)
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr}")
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
