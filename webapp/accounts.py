"""User accounts and API tokens: who may log in, with which roles, and how that is checked.

Flask-free, so the `onewindow` CLI, the demo seed and tests use it without an app. It lives in
webapp/ rather than domain/ because it is the application's gate, not the registry office's
rules, and because it hands out engine `Actor`s: domain/ must not import engine/
(`webapp → engine → handlers → adapters/domain → storage`), and nothing below webapp/ needs to
know about logins — the engine only ever sees an Actor (name + roles).

- Passwords: argon2id (argon2-cffi), salted, parameters in the stored string; a hash made
  with older parameters is replaced at the next successful login.
- Lock-out: `max_failures` consecutive wrong passwords lock the account for `lockout`; while
  locked, passwords are not even checked. The password is checked outside the write
  transaction (argon2 takes tens of milliseconds and SQLite has one writer); the outcome is
  recorded in a short one that re-reads the row, so parallel guesses still lock it.
- An unknown login costs the same argon2 work as a known one, and both answer "invalid", so
  the answer does not tell which part was wrong. (A lock-out is reported as such, so the
  clerk knows to wait; that does tell a guesser the login exists, after five tries.)
- API tokens: `owt_` + 256 random bits, shown once; only their SHA-256 is stored (a stolen
  database gives no usable token; no salt is needed for random secrets of that size).
  Tokens of disabled accounts stop working; revoked tokens never work again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from domain.clock import Clock
from domain.roles import ROLES
from engine.runtime import Actor
from storage.db import Database, Prepared
from storage.models import ApiToken, UserAccount

log = logging.getLogger(__name__)

LOGIN_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
TOKEN_PREFIX = "owt_"
_TOKEN_PATTERN = re.compile(r"^owt_[A-Za-z0-9_-]{43}$")


class AccountError(ValueError):
    """A request about an account that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class AccountPolicy:
    """How logins are checked. Defaults are argon2-cffi's (RFC 9106 low-memory profile)."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    min_password_length: int = 8
    time_cost: int = argon2.DEFAULT_TIME_COST
    memory_cost: int = argon2.DEFAULT_MEMORY_COST  # KiB
    parallelism: int = argon2.DEFAULT_PARALLELISM
    # a token's last_used_at is written at most this often (not one write per API call)
    token_touch_interval: timedelta = timedelta(minutes=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AccountPolicy:
        """ONEWINDOW_LOGIN_MAX_FAILURES, ONEWINDOW_LOGIN_LOCKOUT_MINUTES, ONEWINDOW_PASSWORD_MIN_LENGTH,
        ONEWINDOW_ARGON2_TIME_COST / _MEMORY_KIB / _PARALLELISM; unset ones keep the defaults."""
        env = os.environ if env is None else env
        base = cls()

        def number(name: str, default: int, minimum: int) -> int:
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = int(raw)
            except ValueError:
                raise AccountError(f"{name}={raw!r} is not a whole number") from None
            if value < minimum:
                raise AccountError(f"{name} must be at least {minimum} (got {value})")
            return value

        return cls(
            max_failures=number("ONEWINDOW_LOGIN_MAX_FAILURES", base.max_failures, 1),
            lockout=timedelta(minutes=number("ONEWINDOW_LOGIN_LOCKOUT_MINUTES",
                                             int(base.lockout.total_seconds() // 60), 1)),
            min_password_length=number("ONEWINDOW_PASSWORD_MIN_LENGTH", base.min_password_length, 6),
            time_cost=number("ONEWINDOW_ARGON2_TIME_COST", base.time_cost, 1),
            memory_cost=number("ONEWINDOW_ARGON2_MEMORY_KIB", base.memory_cost, 8 * 1024),
            parallelism=number("ONEWINDOW_ARGON2_PARALLELISM", base.parallelism, 1),
        )

    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_cost,
                                     parallelism=self.parallelism)


@dataclass(frozen=True)
class User:
    """A user account as the application sees it (no password hash). Also what Flask-Login
    keeps as `current_user`: it has the attributes Flask-Login asks for."""

    id: int
    login: str
    display_name: str
    roles: tuple[str, ...]
    office: str | None
    active: bool
    session_version: int
    created_at: datetime
    last_login_at: datetime | None = None
    locked_until: datetime | None = None

    @property
    def actor(self) -> Actor:
        """Who this user is to the engine: the login as the name, the roles as held now."""
        return Actor(self.login, frozenset(self.roles))

    def has(self, *roles: str) -> bool:
        """Holds at least one of `roles`."""
        return any(r in self.roles for r in roles)

    # ---- Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """What the login session stores: the id and the session version, so a password change
        or disabling the account ends the sessions opened before it."""
        return f"{self.id}:{self.session_version}"


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: User | None = None
    # invalid (unknown login or wrong password) | locked | inactive
    reason: str | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_login: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedToken:
    """A new token. `token` exists only here: it is not stored and cannot be shown again."""

    token: str = field(repr=False)
    info: TokenInfo


def normalise_login(login: str) -> str:
    return (login or "").strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_password(length: int = 14) -> str:
    """A random password without look-alike characters (0/O, 1/l/I), for demo users and resets."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def actor_for(user: User) -> Actor:
    return user.actor


class Accounts:
    """User accounts in one database. Thread-safe: no state but the policy and a dummy hash."""

    def __init__(self, db: Database, clock: Clock | None = None, policy: AccountPolicy | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        self.policy = policy or AccountPolicy()
        self._hasher = self.policy.hasher()
        self._dummy_hash: str | None = None

    # ================================================================== users

    def create_user(self, login: str, display_name: str, password: str, roles: Iterable[str],
                    office: str | None = None, active: bool = True) -> User:
        login = self.check_login(login)
        display_name = (display_name or "").strip()
        if not display_name:
            raise AccountError("a display name is needed (the name clerks see, e.g. 王敏)")
        roles = self.check_roles(roles)
        self.check_password(password, login)
        row = UserAccount(login=login, display_name=display_name, password_hash=self._hasher.hash(password),
                          roles=list(roles), office=(office or "").strip() or None, active=active,
                          failed_logins=0, session_version=0, created_at=self.clock.now())
        try:
            with self.db.write() as s:
                if s.scalar(select(UserAccount.id).where(UserAccount.login == login)) is not None:
                    raise AccountError(f"login {login!r} is taken; choose another")
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise AccountError(f"login {login!r} is taken; choose another") from None

    def get(self, user_id: int) -> User | None:
        """The user of a login session (every page request asks): one prebuilt Core query."""
        with self.db.read() as s:
            row = s.execute(_USER_BY_ID, {"user_id": user_id}).first()
        return _user_from_row(row) if row is not None else None

    def by_login(self, login: str) -> User | None:
        with self.db.read() as s:
            row = s.scalar(select(UserAccount).where(UserAccount.login == normalise_login(login)))
            return _user(row) if row is not None else None

    def users(self) -> list[User]:
        with self.db.read() as s:
            return [_user(r) for r in s.scalars(select(UserAccount).order_by(UserAccount.login))]

    def set_password(self, login: str, password: str) -> User:
        """A new password; also unlocks the account and ends its open sessions."""
        login = normalise_login(login)
        self.check_password(password, login)
        new_hash = self._hasher.hash(password)
        return self._change(login, password_hash=new_hash, failed_logins=0, locked_until=None,
                            session_version=UserAccount.session_version + 1)

    def set_active(self, login: str, active: bool) -> User:
        """Disable (ends its sessions, its tokens stop working) or enable an account."""
        values: dict[str, Any] = {"active": active}
        if not active:
            values["session_version"] = UserAccount.session_version + 1
        return self._change(normalise_login(login), **values)

    def set_roles(self, login: str, roles: Iterable[str]) -> User:
        """Roles are read on every request, so a change applies from the user's next click."""
        return self._change(normalise_login(login), roles=list(self.check_roles(roles)))

    def unlock(self, login: str) -> User:
        return self._change(normalise_login(login), failed_logins=0, locked_until=None)

    # ================================================================== logging in

    def authenticate(self, login: str, password: str) -> LoginResult:
        """Check a login and password; count failures and lock out; rehash old hashes on success."""
        login = normalise_login(login)
        now = self.clock.now()
        with self.db.read() as s:
            row = s.scalar(select(UserAccount).where(UserAccount.login == login)) if login else None
            if row is not None:
                s.expunge(row)
        if row is None:
            self._verify(self._dummy(), password)  # the same work as for a known login
            return LoginResult(False, reason="invalid")
        if row.locked_until is not None and row.locked_until > now:
            return LoginResult(False, reason="locked", locked_until=row.locked_until)
        password_ok = self._verify(row.password_hash, password)
        new_hash = None
        if password_ok and self._needs_rehash(row.password_hash):
            new_hash = self._hasher.hash(password)
        with self.db.write() as s:
            current = s.scalar(select(UserAccount).where(UserAccount.id == row.id).with_for_update())
            if current is None:
                return LoginResult(False, reason="invalid")
            if current.locked_until is not None and current.locked_until > now:
                # locked by parallel attempts while this one was being checked
                return LoginResult(False, reason="locked", locked_until=current.locked_until)
            if not password_ok or current.password_hash != row.password_hash:
                current.failed_logins += 1
                if current.failed_logins >= self.policy.max_failures:
                    current.failed_logins = 0
                    current.locked_until = now + self.policy.lockout
                    log.warning("login %s locked until %s after %d failed attempts", login,
                                current.locked_until.isoformat(), self.policy.max_failures)
                    return LoginResult(False, reason="locked", locked_until=current.locked_until)
                return LoginResult(False, reason="invalid")
            if not current.active:
                return LoginResult(False, reason="inactive")  # told only to who knows the password
            current.failed_logins = 0
            current.locked_until = None
            current.last_login_at = now
            if new_hash is not None:
                current.password_hash = new_hash
                log.info("login %s: password rehashed with the current argon2 parameters", login)
            s.flush()
            return LoginResult(True, user=_user(current))

    # ================================================================== API tokens

    def issue_token(self, login: str, name: str) -> IssuedToken:
        """A new token for `login`. The returned `token` is the only copy: show it once."""
        name = (name or "").strip()
        if not name:
            raise AccountError("a token needs a name that says where it is used (e.g. 自助机 3号)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.write() as s:
            user = s.scalar(select(UserAccount).where(UserAccount.login == normalise_login(login)))
            if user is None:
                raise AccountError(f"no user with login {login!r}")
            row = ApiToken(user_id=user.id, token_hash=token_hash(token), name=name[:200], created_at=now)
            s.add(row)
            s.flush()
            return IssuedToken(token, _token(row, user.login))

    def tokens(self, login: str | None = None, include_revoked: bool = False) -> list[TokenInfo]:
        with self.db.read() as s:
            q = select(ApiToken, UserAccount.login).join(UserAccount, UserAccount.id == ApiToken.user_id)
            if login is not None:
                q = q.where(UserAccount.login == normalise_login(login))
            if not include_revoked:
                q = q.where(ApiToken.revoked_at.is_(None))
            return [_token(t, user_login) for t, user_login in s.execute(q.order_by(ApiToken.id))]

    def revoke_token(self, token_id: int, login: str | None = None) -> bool:
        """Revoke a token (only `login`'s, if given). False if there is no such unrevoked token."""
        with self.db.write() as s:
            q = update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            if login is not None:
                owner = select(UserAccount.id).where(UserAccount.login == normalise_login(login)).scalar_subquery()
                q = q.where(ApiToken.user_id == owner)
            return s.execute(q.values(revoked_at=self.clock.now())).rowcount > 0

    def user_for_token(self, token: str) -> User | None:
        """The active user a valid, unrevoked token belongs to; None for anything else."""
        if not token or not _TOKEN_PATTERN.match(token):
            return None
        # every API request asks this: one indexed lookup by the token's SHA-256 (unique index), a
        # statement compiled once and run on the cursor, no session — no argon2, no query building
        now = self.clock.now()
        with self.db.read_engine.connect() as conn:
            found = _USER_BY_TOKEN.first(conn, {"token_hash": token_hash(token)})
        if found is None:
            return None
        token_id, last_used = found[0], found[1]
        user = _user_from_row(found[2:])
        if not user.active:
            return None
        if last_used is None or now - last_used >= self.policy.token_touch_interval:
            with self.db.write() as s:
                s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        return user

    # ================================================================== internals

    def count(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(UserAccount)) or 0

    def _change(self, login: str, **values: Any) -> User:
        with self.db.write() as s:
            done = s.execute(update(UserAccount).where(UserAccount.login == login).values(**values))
            if done.rowcount == 0:
                raise AccountError(f"no user with login {login!r}")
            row = s.scalar(select(UserAccount).where(UserAccount.login == login))
            assert row is not None
            s.refresh(row)
            return _user(row)

    def check_login(self, login: str) -> str:
        login = normalise_login(login)
        if not LOGIN_PATTERN.match(login):
            raise AccountError(f"login {login!r}: use 2–64 characters, latin letters, digits, '_', '.' or '-', "
                               "starting with a letter (e.g. wang.min)")
        return login

    @staticmethod
    def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(r.strip() for r in roles if r and r.strip()))
        unknown = [r for r in chosen if r not in ROLES]
        if unknown:
            raise AccountError(f"unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}")
        return chosen

    def check_password(self, password: str, login: str) -> None:
        if len(password or "") < self.policy.min_password_length:
            raise AccountError(f"the password needs at least {self.policy.min_password_length} characters")
        if password.strip().lower() == login:
            raise AccountError("the password must not be the login")

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        return self._dummy_hash


def _user(row: UserAccount) -> User:
    return User(id=row.id, login=row.login, display_name=row.display_name, roles=tuple(row.roles or ()),
                office=row.office, active=row.active, session_version=row.session_version,
                created_at=row.created_at, last_login_at=row.last_login_at, locked_until=row.locked_until)


# Statements of the per-request path (the session's user, the token's user), built once.
_ua = UserAccount.__table__.c
_at = ApiToken.__table__.c
_USER_COLUMNS = (_ua.id, _ua.login, _ua.display_name, _ua.roles, _ua.office, _ua.active, _ua.session_version,
                 _ua.created_at, _ua.last_login_at, _ua.locked_until)
_USER_BY_ID = select(*_USER_COLUMNS).where(_ua.id == bindparam("user_id"))
_USER_BY_TOKEN = Prepared(select(_at.id, _at.last_used_at, *_USER_COLUMNS)
                          .join_from(ApiToken.__table__, UserAccount.__table__, _ua.id == _at.user_id)
                          .where(_at.token_hash == bindparam("token_hash"), _at.revoked_at.is_(None)))


def _user_from_row(row: Any) -> User:
    """A User from the columns of _USER_COLUMNS, in that order."""
    (user_id, login, display_name, roles, office, active, session_version, created_at, last_login_at,
     locked_until) = row
    return User(id=user_id, login=login, display_name=display_name, roles=tuple(roles or ()), office=office,
                active=active, session_version=session_version, created_at=created_at,
                last_login_at=last_login_at, locked_until=locked_until)


def _token(row: ApiToken, login: str) -> TokenInfo:
    return TokenInfo(id=row.id, user_login=login, name=row.name, created_at=row.created_at,
                     last_used_at=row.last_used_at, revoked_at=row.revoked_at)
