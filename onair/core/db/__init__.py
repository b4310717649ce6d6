"""PostgreSQL access: pool, embedded server launcher, migrations."""
