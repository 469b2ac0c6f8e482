"""Case search by case number, unit number or ID number (首问负责: any clerk finds any case) and
the case page: diagram, history, deadline and stage times, certificates, incidents (issue #5).
Every page here needs a login."""
from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.before_request
@login_required
def _login_first() -> None:
    return None
