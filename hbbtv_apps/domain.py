"""HbbTV red-button apps as the composition root sees it."""

from hbbtv_apps import routes
from onair.core.domain import Domain

DOMAIN = Domain("hbbtv", setup=routes.setup)
