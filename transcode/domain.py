"""Transcoding as the composition root sees it: job handlers only (no routes)."""

from onair.core.domain import Domain
from transcode import live, tasks

DOMAIN = Domain("transcode", handlers={**tasks.HANDLERS, **live.HANDLERS})
