"""Accounts as the composition root sees it: the users/audit API and `onair user`."""

from accounts import commands, routes
from onair.core.domain import Domain

DOMAIN = Domain("accounts", setup=routes.setup, commands=commands.register)
