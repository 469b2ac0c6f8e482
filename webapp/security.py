"""Who is asking, and may they: login sessions, API tokens, CSRF, roles, error answers.

How a request is authenticated:
- Pages: the login session (Flask-Login; a signed, HttpOnly, SameSite=Lax cookie, Secure with
  ONEWINDOW_SECURE_COOKIES=1). Logging in starts a new session (nothing from before survives:
  no session fixation). Logging out, a password change and disabling the account move the
  user's session version on, which ends every session of the user and every copy of its cookie
  (webapp/views/auth.py). `Authorization` headers are ignored on pages.
- The JSON API (paths under /api/): `Authorization: Bearer <token>` — the request is done as
  the token's user, whatever else it carries (a session cookie of someone else is ignored; a
  bad token is a 401, never a fall-back to the session). Without that header the login session
  is accepted too, so the pages' little JavaScript can call the API.
- CSRF (Flask-WTF): every POST/PUT/PATCH/DELETE needs the session's CSRF token (form field
  `csrf_token` or header `X-CSRFToken`), except API calls with a bearer token: a browser never
  adds one by itself, so those cannot be forged cross-site. A missing or wrong token is a 400.

Not logged in: pages redirect to the login page (with `next`); the API answers 401 JSON.
Missing role: 403 (page or JSON). Views use `login_required` and `role_required(...)`;
`current_user` is a `webapp.accounts.User`, `current_user.actor` the engine's `Actor`.

Input no view can use is refused before any view runs (issue #6): a NUL character in the path,
the query or a form field (PostgreSQL cannot store or even compare it) is a 400; an id in the
path beyond a 64-bit integer names nothing, a 404. What still reaches the database or the JSON
parser and cannot be taken there (a number out of range, a lone UTF-16 surrogate, JSON nested
past Python's recursion limit) is a 400 too, never a 500; it is logged as a warning.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from webapp.accounts import Accounts, User

__all__ = ["accounts", "current_actor", "init_security", "is_api_request", "login_required", "role_required",
           "safe_next"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_ID = 2**63 - 1  # the largest id a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds
# what the database or the parser cannot take: answered as a bad request, not a server error
UNUSABLE_INPUT = (DataError, OverflowError, RecursionError, UnicodeEncodeError)
API_PREFIX = "/api/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXTENSION = "onewindow.accounts"


def accounts() -> Accounts:
    return current_app.extensions[EXTENSION]


def current_actor() -> Any:
    """The engine Actor of the user of this request (login required)."""
    return current_user.actor


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header; "" for a malformed one; None if absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _sep, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def role_required(*roles: str) -> Callable[[F], F]:
    """The view needs a logged-in user holding at least one of `roles` (401/redirect, then 403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if not current_user.has(*roles):
                return forbidden()
            return view(*args, **kwargs)

        return login_required(wrapper)  # type: ignore[return-value]

    return decorate


def forbidden() -> Any:
    abort(403)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects to other hosts)."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(c in target for c in "\r\n\\"):
        return None
    return target


def api_error(status: int, message: str, code: str | None = None, **extra: Any) -> Response:
    """A JSON error a person can read: {"error": code, "message": …}."""
    body = {"error": code or _status_code_name(status), "message": message, **extra}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="onewindow"'
    return response


def init_security(app: Flask, accounts_service: Accounts) -> None:
    app.extensions[EXTENSION] = accounts_service
    csrf = CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = app.config.get("SESSION_PROTECTION", "basic")

    @login_manager.user_loader
    def load_from_session(user_id: str) -> User | None:
        if is_api_request() and bearer_token() is not None:
            return None  # the token decides, never the cookie
        user_part, _sep, version = user_id.partition(":")
        if not user_part.isdigit() or not version.lstrip("-").isdigit():
            return None
        user = accounts().get(int(user_part))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    @login_manager.request_loader
    def load_from_token(_request: Any) -> User | None:
        if not is_api_request():
            return None
        token = bearer_token()
        if not token:
            return None
        user = accounts().user_for_token(token)
        if user is not None:
            g.auth_method = "token"
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        if is_api_request():
            if bearer_token() is not None:
                return api_error(401, _("API 令牌无效、已撤销或其用户已停用。"), "invalid_token")
            return api_error(401, _("需要登录：请在请求头中提供 Authorization: Bearer <令牌>。"), "unauthorized")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    def unusable_input() -> Any:
        if is_api_request():
            return api_error(400, "请求中有无法处理的值：NUL 字符、超出范围的数字、不成对的 Unicode 代理字符"
                             "或嵌套过深的 JSON。请检查后重试。", "unusable_input")
        return render_template("error.html", code=400, title=_("请求无效"), message=_("请求无效。")), 400

    @app.before_request
    def refuse_unusable_input() -> Any:
        if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
            abort(404)
        texts = [request.path, *request.args.keys(), *request.args.values()]
        if not is_api_request() and request.method not in SAFE_METHODS:
            # the API reads its bodies itself, within its own limits (webapp.api_support)
            texts += [*request.form.keys(), *request.form.values(),
                      *(f.filename or "" for f in request.files.values())]
        if any("\x00" in t for t in texts):
            return unusable_input()
        return None

    def refused_by_the_database(err: Exception) -> Any:
        log.warning("%s %s: input the database or parser cannot take, answered 400: %s", request.method,
                    request.path, str(err).splitlines()[0] if str(err) else type(err).__name__, exc_info=True)
        return unusable_input()

    for kind in UNUSABLE_INPUT:
        app.register_error_handler(kind, refused_by_the_database)

    @app.before_request
    def check_csrf() -> None:
        if not app.config.get("WTF_CSRF_ENABLED", True) or request.method in SAFE_METHODS:
            return
        if request.endpoint is None:
            return  # 404 / 405 answer first
        if is_api_request() and (bearer_token() is not None or not current_user.is_authenticated):
            return  # token-authenticated, or anonymous (the API answers 401): no ambient credential to forge
        csrf.protect()

    @app.after_request
    def security_headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                     "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'")
        if request.endpoint != "static" and (current_user.is_authenticated or request.method != "GET"):
            # case data on shared counter PCs: never kept by the browser or a proxy
            h["Cache-Control"] = "no-store"
        if app.config.get("SESSION_COOKIE_SECURE"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.errorhandler(CSRFError)
    def csrf_failed(err: CSRFError) -> Any:
        message = _("表单已过期或缺少安全令牌（CSRF）。请刷新页面后重新提交。")
        if is_api_request():
            return api_error(400, message, "csrf_failed")
        return render_template("error.html", code=400, title=_("请求无效"), message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        code = err.code or 500
        messages = {
            400: _("请求无效。"),
            403: _("您的角色无权进行此操作。如需权限，请联系系统管理员。"),
            404: _("找不到该页面或对象。请检查地址或案件号。"),
            405: _("不支持该请求方法。"),
            413: _("上传的内容太大。"),
        }
        titles = {400: _("请求无效"), 403: _("无权访问"), 404: _("未找到"), 405: _("请求方法不支持"),
                  413: _("内容太大"), 500: _("系统出错")}
        message = messages.get(code, _("系统出错，请稍后重试；问题持续时请联系系统管理员。") if code >= 500
                               else err.description or "")
        if is_api_request():
            return api_error(code, message)
        return render_template("error.html", code=code, title=titles.get(code, err.name), message=message), code


def _status_code_name(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            409: "conflict", 413: "too_large", 422: "invalid", 500: "server_error"}.get(status, str(status))
