"""The studio (producers' pages) as the composition root sees it."""

from onair.core.domain import Domain
from studio import routes

DOMAIN = Domain("studio", setup=routes.setup)
