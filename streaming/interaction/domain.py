"""Live interaction (devices, polls, chat) as the composition root sees it."""

from onair.core.domain import Domain
from streaming.interaction import routes

DOMAIN = Domain("interaction", setup=routes.setup)
