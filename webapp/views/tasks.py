"""The clerks' task list and task pages (issue #5, "Clerks"). Every page here needs a login.

Conventions for views: `current_actor()` (webapp.security) is who acts, for the engine;
forms are Flask-WTF forms or carry `csrf_token()`; completing a task maps the engine's
`Conflict` to a 409 page that keeps the clerk's input.
"""
from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@bp.before_request
@login_required
def _login_first() -> None:
    return None
