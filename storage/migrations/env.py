"""Alembic's entry: runs the revisions on the connection `storage.migrations.upgrade` hands in."""

from alembic import context

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # only ever run through storage.migrations.upgrade, which holds the lock
    raise RuntimeError("Run migrations with `python cli.py db upgrade`, not the alembic command.")
# Batch mode: SQLite alters a table by copying it, which a later revision may need.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
