"""Flask app factory: `create_app(config)` builds the web application — login and roles
(webapp.security, webapp.accounts), languages (webapp.i18n), and one blueprint per area
(webapp.views: auth, main, tasks, cases, admin, api; and the public guide).

`config` overrides the settings of webapp.config (which read ONEWINDOW_* variables). Besides
Flask's own keys it may hold:
- ENGINE: an engine.Engine to use (else one is built for DATABASE_URL / ONEWINDOW_DATABASE_URL);
- ACCOUNT_POLICY: a webapp.accounts.AccountPolicy (else from ONEWINDOW_LOGIN_* / _ARGON2_* variables);
- SECURE_COOKIES: True to send the session cookie over HTTPS only (else ONEWINDOW_SECURE_COOKIES).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from domain.clock import SHANGHAI
from webapp.accounts import AccountPolicy, Accounts
from webapp.config import settings
from webapp.i18n import init_babel
from webapp.security import init_security
from webapp.views import guide, register_blueprints

ENGINE_EXTENSION = "onewindow"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(settings(config))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese messages stay readable
    engine = app.config.get("ENGINE")
    if engine is None:
        from webapp.wiring import build_engine

        engine = build_engine(app.config.get("DATABASE_URL"))
    app.extensions[ENGINE_EXTENSION] = engine
    policy = app.config.get("ACCOUNT_POLICY") or AccountPolicy.from_env()
    init_security(app, Accounts(engine.db, engine.clock, policy))
    init_babel(app)
    register_blueprints(app)
    app.register_blueprint(guide.bp)  # the public guide 办事指南 (/guide): no login

    @app.template_filter("local")
    def local(value: Any) -> str:
        """A time as the office reads it (Shanghai); ISO text from case data is parsed first."""
        if isinstance(value, str) and value:
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
            if value.tzinfo is None:
                return value.strftime("%Y-%m-%d %H:%M")
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """For load balancers and monitoring: no login, nothing but up or down."""
        with engine.db.read() as s:
            s.execute(select(1))
        return {"status": "ok", "database": engine.db.dialect}

    return app
