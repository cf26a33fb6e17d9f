"""Alembic environment of the results store: always online, on the connection the store hands over
(``config.attributes["connection"]``, already inside a transaction), batch mode on SQLite."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "vsbench_schema_version"  # not alembic_version: the database may be shared

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("vsbench migrations run through vsbench.harness.store (no connection was given)")

context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    version_table=context.config.attributes.get("version_table", VERSION_TABLE),
)
with context.begin_transaction():
    context.run_migrations()
