"""People who use the studio and the admin API: users with a role, sessions, login throttling, audit log.

It lives in core because every domain's routes are guarded by it (onair.core.auth.requires) and record
audit entries; the HTTP API and the `onair user` command that manage accounts are the `accounts` domain.
"""
