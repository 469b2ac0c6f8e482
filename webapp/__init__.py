"""Flask app factory. The clerks' pages and the JSON API grow here (issue #5); for now the
office overview: deployed processes, open tasks per post, incidents, recent cases."""
from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from sqlalchemy import func, select

from domain.clock import SHANGHAI
from domain.roles import ROLES, role_label
from storage.models import Case, HumanTask
from webapp.wiring import build_engine


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    engine = app.config.get("ENGINE") or build_engine(app.config.get("DATABASE_URL"))
    app.extensions["onewindow"] = engine

    @app.template_filter("local")
    def local(value: Any) -> str:
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""

    @app.get("/")
    def overview() -> str:
        with engine.db.read() as s:
            per_role = dict(s.execute(select(HumanTask.role, func.count()).where(HumanTask.state == "open")
                                      .group_by(HumanTask.role)).all())
            per_status = dict(s.execute(select(Case.status, func.count()).group_by(Case.status)).all())
            recent = s.scalars(select(Case).order_by(Case.id.desc()).limit(20)).all()
            tasks = {c.id: [t.name or t.bpmn_id for t in s.scalars(select(HumanTask).where(
                HumanTask.case_id == c.id, HumanTask.state == "open"))] for c in recent}
        return render_template(
            "overview.html", versions=engine.versions(), per_role=per_role, roles=ROLES, role_label=role_label,
            per_status=per_status, recent=recent, tasks=tasks, incidents=engine.incidents("open"),
        )

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with engine.db.read() as s:
            s.execute(select(1))
        return {"status": "ok", "database": engine.db.dialect}

    return app
