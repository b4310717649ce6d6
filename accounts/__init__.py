"""Managing accounts: the users and audit API (/api/v1/users, /api/v1/me, /api/v1/audit) and `onair user`.

The model (users, sessions, roles, audit log) is onair.core.accounts, since every domain's guard uses it.
"""
