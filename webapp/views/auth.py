"""Logging in and out, and the language switch."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import update
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from domain.clock import SHANGHAI
from storage.models import UserAccount
from webapp.accounts import User
from webapp.i18n import LANGUAGES
from webapp.security import accounts, safe_next

bp = Blueprint("auth", __name__)

# kept across login and logout: the visitor's choice, not part of who they are
KEPT_KEYS = ("lang",)


class LoginForm(FlaskForm):
    login = StringField(_l("登录名"), validators=[DataRequired(_l("请输入登录名。")), Length(max=64)])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码。")), Length(max=1024)])
    next = HiddenField()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("main.overview"))
    error = None
    if form.validate_on_submit():
        result = accounts().authenticate(form.login.data or "", form.password.data or "")
        if result.ok and result.user is not None:
            start_session(result.user)
            return redirect(safe_next(form.next.data) or url_for("main.overview"))
        if result.reason == "locked" and result.locked_until is not None:
            error = _("登录失败次数过多，该账号已暂时锁定。请在 %(time)s 之后再试，或请系统管理员解锁。",
                      time=result.locked_until.astimezone(SHANGHAI).strftime("%H:%M"))
        elif result.reason == "inactive":
            error = _("该账号已停用。如需使用，请联系系统管理员。")
        else:
            error = _("登录名或密码不正确。")
    return render_template("auth/login.html", form=form, error=error)


def start_session(user: User) -> None:
    """A new session for the user: nothing of the session before the login survives (an
    attacker who planted a session cookie gains nothing), and a new session id and CSRF token."""
    kept = {k: session[k] for k in KEPT_KEYS if k in session}
    session.clear()
    g.pop("csrf_token", None)
    session.update(kept)
    login_user(user)
    session["sid"] = secrets.token_urlsafe(24)
    session.permanent = True


@bp.post("/logout")
def logout() -> Any:
    """End the session for good. The session lives in a signed cookie, not on the server, so a
    copy of the cookie taken before logging out (a shared counter PC, a proxy log) would still
    work: logging out therefore moves the user's session version on, which ends every session of
    the user (as a password change does), this one and any copy of it."""
    kept = {k: session[k] for k in KEPT_KEYS if k in session}
    if current_user.is_authenticated:
        with accounts().db.write() as s:
            s.execute(update(UserAccount).where(UserAccount.id == current_user.id)
                      .values(session_version=UserAccount.session_version + 1))
    logout_user()
    session.clear()
    session.update(kept)
    flash(_("您已退出登录。"), "info")
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
def set_language(code: str) -> Any:
    """The language switch: remembered in the session (also across login and logout)."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("main.overview"))
