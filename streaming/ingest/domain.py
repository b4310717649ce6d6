"""Ingest as the composition root sees it: upload routes, the URL pull job, `onair ingest`, the sample clip."""

from onair.core import job_kinds
from onair.core.domain import Domain
from streaming.ingest import commands, routes, sample, url_pull

DOMAIN = Domain("ingest", setup=routes.setup, handlers={job_kinds.INGEST_FETCH: url_pull.fetch_handler},
                commands=commands.register, first_start=sample.ingest_sample)
