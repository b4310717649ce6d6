"""Running ffmpeg from asyncio: progress from `-progress pipe:1`, a timeout, killed on cancel or parent death."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import imageio_ffmpeg

T = TypeVar("T")


class FFmpegError(RuntimeError):
    pass


def ffmpeg_binary(configured: str | None) -> str:
    return configured or imageio_ffmpeg.get_ffmpeg_exe()


def die_with_parent() -> None:
    """Linux: SIGKILL ffmpeg when the worker dies (kill -9 included), so no orphan keeps encoding."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def within(proc: asyncio.subprocess.Process, work: Awaitable[T], time_limit: float) -> T:
    """Await `work` (reading the process) for at most `time_limit` s; on timeout or cancel, the process is
    killed and reaped before the error goes on, so no ffmpeg outlives its job."""
    try:
        async with asyncio.timeout(time_limit):
            return await work
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise


async def run_ffmpeg(argv: Sequence[str], *, time_limit: float,
                     on_progress: Callable[[float], Awaitable[None]] | None = None) -> None:
    """Run ffmpeg; `on_progress(seconds_done)` is called from its -progress output. Raises FFmpegError."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent if os.name == "posix" else None)
    stderr_chunks: list[bytes] = []

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and on_progress and value.isdigit():
                await on_progress(int(value) / 1e6)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr_chunks.append(chunk)
            del stderr_chunks[:-8]  # keep the tail only

    async def run() -> int:
        await asyncio.gather(read_progress(), read_stderr())
        return await proc.wait()

    rc = await within(proc, run(), time_limit)
    if rc != 0:
        tail = b"".join(stderr_chunks).decode(errors="replace").strip().splitlines()[-3:]
        raise FFmpegError(f"ffmpeg exited with {rc}: {' | '.join(tail) or 'no message'}")
