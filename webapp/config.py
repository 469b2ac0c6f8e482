"""The web application's settings: defaults, then ONEWINDOW_* environment variables, then what
the caller of `create_app(config)` passes (tests), in that order of precedence.

| variable | default | meaning |
| ONEWINDOW_SECRET_KEY | generated once into var/secret_key (with a warning) | signs sessions and CSRF tokens |
| ONEWINDOW_SECURE_COOKIES | 0 | 1: session cookies only over HTTPS (set it behind TLS) |
| ONEWINDOW_SESSION_HOURS | 8 | a login ends after this long without a request |
| ONEWINDOW_VAR_DIR | var | where the generated development secret key is kept |
"""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECRET_FILE = "secret_key"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def settings(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    secure = bool(overrides.pop("SECURE_COOKIES", _flag(env.get("ONEWINDOW_SECURE_COOKIES"))))
    hours = float(env.get("ONEWINDOW_SESSION_HOURS") or 8)
    cfg: dict[str, Any] = {
        "SESSION_COOKIE_NAME": "onewindow_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        # no "remember me": a login lives as long as the session, which ends after `hours` idle
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=hours),
        "SESSION_PROTECTION": "basic",
        # CSRF: checked by webapp.security for every unsafe request except token-authenticated API
        # calls; a token lives as long as the session (a task form left open over lunch still posts)
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "VAR_DIR": env.get("ONEWINDOW_VAR_DIR") or "var",
        "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,  # deployments and scanned materials
    }
    if env.get("ONEWINDOW_SECRET_KEY"):
        cfg["SECRET_KEY"] = env["ONEWINDOW_SECRET_KEY"]
    cfg.update(overrides)
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = secrets.token_hex(32) if cfg.get("TESTING") else dev_secret_key(Path(cfg["VAR_DIR"]))
    if len(str(cfg["SECRET_KEY"])) < 16:
        raise ValueError("ONEWINDOW_SECRET_KEY is too short: use at least 32 random characters "
                         "(e.g. python3 -c 'import secrets; print(secrets.token_hex(32))')")
    return cfg


def dev_secret_key(var_dir: Path) -> str:
    """A random key generated on first use and kept in var/secret_key (mode 600), so development
    logins survive restarts. Production sets ONEWINDOW_SECRET_KEY, the same on every machine."""
    path = var_dir / SECRET_FILE
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if len(key) < 32:
        var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        log.warning("ONEWINDOW_SECRET_KEY is not set: generated a development key in %s. "
                    "Set ONEWINDOW_SECRET_KEY (the same on every server) in production.", path)
    else:
        log.warning("ONEWINDOW_SECRET_KEY is not set: using the development key in %s. "
                    "Set ONEWINDOW_SECRET_KEY (the same on every server) in production.", path)
    return key
