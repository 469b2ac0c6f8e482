"""Admins, designers and supervisors (issue #5): deployments and versions, incidents, timers and
the outbox, the supervisor dashboard. Every page here needs one of those roles; narrow a page
further with `@role_required("admin")` and the like."""
from __future__ import annotations

from flask import Blueprint
from flask_login import current_user, login_required

from webapp.security import forbidden

bp = Blueprint("admin", __name__, url_prefix="/admin")
ROLES = ("admin", "supervisor", "designer")


@bp.before_request
@login_required
def _staff_only() -> None:
    if not current_user.has(*ROLES):
        forbidden()
    return None
