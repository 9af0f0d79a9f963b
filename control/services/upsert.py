"""``INSERT … ON CONFLICT`` on whichever database the app runs on (Postgres or SQLite)."""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from control.extensions import db


def insert_for_dialect(model):
    """An ``INSERT`` with the dialect's ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
