"""SQLAlchemy models, sessions and Alembic migrations. No business rules."""
