"""Languages: Chinese first (zh_CN, the default), English switchable.

Message ids are the Chinese texts themselves (`_("登录")`), so templates read as the clerks see
them and zh_CN needs no catalogue; webapp/translations/en/LC_MESSAGES/messages.po holds the
English. The compiled messages.mo files are build output, not kept in git: `scripts/setup`
compiles them with pybabel, and `create_app` compiles any that are missing or older than their
.po (so a fresh checkout or an edited .po works without a manual step).

Adding or changing texts:
    .venv/bin/pybabel extract -F babel.cfg -o webapp/translations/messages.pot .
    .venv/bin/pybabel update -i webapp/translations/messages.pot -d webapp/translations
    (translate the new entries in webapp/translations/en/LC_MESSAGES/messages.po)
    .venv/bin/pybabel compile -d webapp/translations
"""
from __future__ import annotations

import logging
from pathlib import Path

from babel import Locale
from flask import Flask, request, session
from flask_babel import Babel, get_locale, gettext, lazy_gettext

from domain.roles import ROLES

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).parent / "translations"
# code -> the language's own name, as the switch shows it
LANGUAGES: dict[str, str] = {"zh_CN": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh_CN"


def _(text: str) -> str:  # for extraction of texts defined elsewhere (domain/roles.py): translated at use
    return text


# The role names of domain/roles.py, marked here so pybabel extracts them for the catalogue.
_ROLE_NAMES = (_("窗口受理"), _("审核"), _("登簿"), _("发证"), _("主管"), _("系统管理员"), _("流程设计"))

STATUS_NAMES = {
    "active": lazy_gettext("办理中"),
    "suspended": lazy_gettext("挂起"),
    "completed": lazy_gettext("办结"),
    "cancelled": lazy_gettext("撤销"),
}


def role_name(code: str | None) -> str:
    """A role's name in the current language. Looked up once per language and role: task lists
    ask it for every row, and gettext goes through Flask-Babel's context lookups each time."""
    locale = get_locale()
    key = (str(locale), code)
    name = _ROLE_NAMES.get(key)
    if name is None:
        if not code:
            name = gettext("任何人")
        else:
            name = gettext(ROLES[code]) if code in ROLES else code
        if locale is not None:  # outside a request gettext answers untranslated: not kept
            _ROLE_NAMES[key] = name
    return name


_ROLE_NAMES: dict[tuple[str, str | None], str] = {}


def status_name(status: str) -> str:
    return str(STATUS_NAMES.get(status, status))


def select_locale() -> str:
    """The language chosen with the switch; API callers without one may ask by Accept-Language;
    otherwise Chinese (whatever the browser prefers: the office works in Chinese)."""
    if not _has_request():
        return DEFAULT_LANGUAGE
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if request.path.startswith("/api/"):
        best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
        if best == "en":
            return "en"
    return DEFAULT_LANGUAGE


_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def _babel_locale() -> Locale:
    """`select_locale` as the Locale object Flask-Babel wants: given a string, it would parse it
    again on every request (Locale.parse normalises against every known locale, ~1 ms)."""
    return _LOCALES[select_locale()]


def html_lang() -> str:
    """The page's `lang` attribute: zh-CN or en."""
    return select_locale().replace("_", "-")


def current_path() -> str:
    """Where a link (the language switch) should come back to: this page, if it was a GET."""
    return request.full_path.rstrip("?") if request.method == "GET" else ""


def init_babel(app: Flask) -> Babel:
    compile_catalogues()
    babel = Babel(app, locale_selector=_babel_locale)
    app.jinja_env.globals.update(role_name=role_name, status_name=status_name, html_lang=html_lang,
                                 LANGUAGES=LANGUAGES, current_language=select_locale,
                                 current_path=current_path)
    return babel


def compile_catalogues(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every .po under `directory` whose .mo is missing or older; returns those written.
    A read-only installation keeps its shipped .mo files (and logs why it could not update)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parent.parent.name)
            tmp = mo.with_suffix(".mo.tmp")
            with tmp.open("wb") as f:
                write_mo(f, catalog)
            tmp.replace(mo)
            written.append(mo)
        except OSError as err:
            log.warning("cannot compile %s (%s): run scripts/setup or pybabel compile", po, err)
    return written


def _has_request() -> bool:
    try:
        return request is not None and bool(request.path)
    except RuntimeError:
        return False
