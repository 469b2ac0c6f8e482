"""The blueprints, one per area, and the navigation the base layout shows.

| blueprint | prefix | what goes there |
| auth | / | login, logout, language switch |
| main | / | the office overview |
| tasks | /tasks | the clerks' task list and task pages |
| cases | /cases | case search (首问负责) and case pages |
| admin | /admin | deployments, incidents, timers and outbox, supervisor dashboard |
| api | /api/v1 | the JSON API (bearer tokens; OpenAPI at /api/v1/openapi.json) |

A page area adds its entry page to NAV with the roles that see it; the layout shows an entry
only once its endpoint exists and to users holding one of its roles (None: everyone).
"""
from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.views import admin, api, auth, cases, main, tasks

# endpoint, label, roles that see it (None: every logged-in user)
NAV: list[tuple[str, object, tuple[str, ...] | None]] = [
    ("main.overview", _l("运行概况"), None),
    ("tasks.index", _l("待办任务"), None),
    ("cases.new", _l("受理立案"), ("window_clerk", "supervisor", "admin")),
    ("cases.index", _l("案件查询"), None),
    ("admin.index", _l("管理"), ("admin", "supervisor", "designer")),
]


def register_blueprints(app: Flask) -> None:
    for module in (auth, main, tasks, cases, admin, api):
        app.register_blueprint(module.bp)

    @app.context_processor
    def navigation() -> dict[str, object]:
        from flask_login import current_user

        if not current_user.is_authenticated:
            return {"nav": []}
        items = [(endpoint, label) for endpoint, label, roles in NAV
                 if endpoint in app.view_functions and (roles is None or current_user.has(*roles))]
        return {"nav": items}
