"""Alembic's environment for the records database.

plateflow runs the migrations itself (:func:`records.upgrade`, ``plateflow db upgrade``) on a
connection it has locked and opened a transaction on, passed as ``config.attributes
["connection"]``; every revision runs in that one transaction.
"""

from __future__ import annotations

from alembic import context

from records._schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - plateflow always passes its connection
    raise RuntimeError("run the records migrations with `plateflow db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
