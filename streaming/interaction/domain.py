"""Live interaction (devices, polls, chat) as the composition root sees it."""

from onair.core import job_kinds
from onair.core.domain import Domain
from streaming.interaction import polls, retention, routes

DOMAIN = Domain("interaction", setup=routes.setup,
                handlers={job_kinds.POLL_WINDOW_CLOSED: polls.close_when_due},
                sweeps=(retention.forget,))
