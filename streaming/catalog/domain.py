"""The catalogue as the composition root sees it."""

from onair.core.domain import Domain
from streaming.catalog import routes, tasks

DOMAIN = Domain("catalog", setup=routes.setup, handlers=tasks.HANDLERS,
                progress_hooks=tasks.PROGRESS_HOOKS)
