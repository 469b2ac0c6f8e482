"""Alembic environment: runs against the connection or URL the caller configured."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from storage.db import normalise_url
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """The sandbox departments' tables (sandbox_*) are not the registry's: migrations leave them alone."""
    return not (type_ == "table" and name.startswith("sandbox_"))


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = normalise_url(config.get_main_option("sqlalchemy.url"))
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite", include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=normalise_url(config.get_main_option("sqlalchemy.url")),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
