"""VMAF of one encoded rung against its source with the bundled ffmpeg's libvmaf."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Literal


def score(binary: str, rung: Path, source: Path, width: int, height: int, *, scale: Literal["rung", "source"],
          options: str = "", timeout: float = 900) -> float:
    """Mean VMAF at width x height: scale="rung" upscales the rung to that size (the picture a viewer sees on a
    screen of the source's size); scale="source" downscales the source to the rung's size (cheaper; compares
    encodes of one rung). `options` are extra libvmaf options (threads, subsampling)."""
    fit = f"scale={width}:{height}:flags=bicubic,"
    rung_chain, source_chain = (fit, "") if scale == "rung" else ("", fit)
    with tempfile.NamedTemporaryFile(suffix=".json") as log:
        extra = f":{options}" if options else ""
        graph = (f"[0:v]{rung_chain}setsar=1,setpts=PTS-STARTPTS[d];[1:v]{source_chain}setsar=1,setpts=PTS-STARTPTS[r];"
                 f"[d][r]libvmaf=log_fmt=json:log_path={log.name}{extra}")
        subprocess.run([binary, "-v", "error", "-nostdin", "-i", str(rung), "-i", str(source), "-lavfi", graph,
                        "-f", "null", "-"], check=True, timeout=timeout)
        return round(json.loads(Path(log.name).read_text())["pooled_metrics"]["vmaf"]["mean"], 2)
