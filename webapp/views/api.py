"""The JSON API under /api/v1 (issue #5). Every endpoint needs a user: an API token
(`Authorization: Bearer owt_…`, issued with `onewindow user token issue`), or the login
session for the pages' scripts (then unsafe methods also need the `X-CSRFToken` header).
The request is always done as the token's user. Errors are JSON: {"error": code, "message": …}
(`webapp.security.api_error`). Add public endpoints (the OpenAPI document) to PUBLIC.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from flask_login import current_user

from webapp.i18n import role_name

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# endpoints anonymous callers may use
PUBLIC: set[str] = set()


@bp.before_request
def _authenticated_only() -> Any:
    if request.endpoint in PUBLIC or current_user.is_authenticated:
        return None
    return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]


@bp.get("/me")
def me() -> dict[str, Any]:
    """Who the API sees: the user of the token (or session), and the roles they act with."""
    user = current_user
    return {"login": user.login, "display_name": user.display_name, "office": user.office,
            "roles": [{"code": r, "name": role_name(r)} for r in user.roles],
            "authenticated_by": g.get("auth_method", "session")}
