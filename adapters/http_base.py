"""The HTTP client every department adapter is built on: timeouts, retries, idempotency keys, error mapping.

One `HttpClient` per department keeps one `httpx.Client` (a connection pool) for the life of the
process. A call is retried *inside the call* only when trying again can help and cannot do harm:

| what happened                                         | retried here | raised to the caller                 |
|-------------------------------------------------------|--------------|--------------------------------------|
| connect/read/write timeout, connection refused/reset, | yes          | `TransientError` after the last try  |
| connection closed without an answer                   |              |                                      |
| HTTP 5xx, 408, 429 (honouring `Retry-After`, capped)  | yes          | `TransientError` after the last try  |
| 2xx whose body is not JSON or fails model validation  | yes          | `TransientError` after the last try  |
| 4xx with a JSON body `{"code": ..., "message": ...}`  | no           | `BusinessError(code, message, **detail)` |
| any other answer (404 page of a wrong URL, 401, 3xx)  | no           | `TransientError` naming the URL setting |

Decisions, and why:
- **A garbled answer is a fault of the moment** (a proxy cut the body, a half-deployed service):
  it is retried like a 5xx and, if it persists, reported as `TransientError` — so the engine
  retries later and finally opens an incident an admin can see — never as a business "no" and
  never as a crash. Every mutating call carries an idempotency key, so trying again is safe.
- **A 4xx without a department error code is not a department's answer**: it is a wrong base URL
  or a gateway refusing us. Retrying at once cannot help, so it is not retried here; it is a
  `TransientError` (not a `BusinessError`, which the diagram would route on as if the department
  had said no) whose message names the setting to check. The engine's own retries and then an
  incident give an admin the chance to fix the configuration and retry.
- **Idempotency**: every mutating call must be given a key by its caller (case + task +
  operation); the same `Idempotency-Key` header goes with every retry, so a retry after a lost
  answer is answered, not executed again. Calls that only read (GET, or a POST that is a query)
  need none.
- **A time budget per call** (`deadline`, default 8 s): attempts stop when the next one would
  start after it, and each attempt's timeouts are cut to what is left. The engine allows a
  step 10 s of handler time by default, so one slow department cannot push a step past it.
- Each retry is logged (logger `adapters.http`, WARNING) with the department, method, path,
  attempt and what went wrong.

Configuration (`HttpSettings.from_env`; a department's own variable wins over the shared one,
e.g. `ONEWINDOW_TAX_HTTP_READ_TIMEOUT` over `ONEWINDOW_HTTP_READ_TIMEOUT`):

| variable                          | default | meaning                                            |
|-----------------------------------|---------|----------------------------------------------------|
| `ONEWINDOW_HTTP_CONNECT_TIMEOUT`  | 2.0     | seconds to open a connection                       |
| `ONEWINDOW_HTTP_READ_TIMEOUT`     | 4.0     | seconds to wait for an answer (also write, pool)   |
| `ONEWINDOW_HTTP_ATTEMPTS`         | 3       | tries per call, the first included                 |
| `ONEWINDOW_HTTP_BACKOFF`          | 0.25    | seconds before the 2nd try; doubles per try (+ jitter) |
| `ONEWINDOW_HTTP_BACKOFF_MAX`      | 2.0     | longest pause between tries (also caps `Retry-After`) |
| `ONEWINDOW_HTTP_DEADLINE`         | 8.0     | seconds a call may take, all tries together        |
"""
from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay

from adapters.common import Model
from domain.errors import BusinessError, TransientError

log = logging.getLogger("adapters.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_MIN_ATTEMPT_SECONDS = 0.05  # don't start a try with less time than this left in the budget


class ResultNotice(Model):
    """The registration result shared back with a department (tax, housing) after registration."""

    case_number: str = Field(min_length=1, max_length=64)
    result: dict[str, Any]


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retries of one department's client. See the module docstring for the variables."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    attempts: int = 3
    backoff: float = 0.25
    backoff_max: float = 2.0
    deadline: float = 8.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            too_small = value < 0 if f.name == "backoff" else value <= 0
            if too_small:
                raise ValueError(f"HTTP setting {f.name} must be positive, not {value}")
        if self.attempts < 1:
            raise ValueError(f"HTTP setting attempts must be at least 1, not {self.attempts}")

    @classmethod
    def from_env(cls, env: Mapping[str, str], department: str | None = None) -> HttpSettings:
        """Read `ONEWINDOW_<DEPARTMENT>_HTTP_<NAME>`, then `ONEWINDOW_HTTP_<NAME>`, else the default."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            names = [f"ONEWINDOW_HTTP_{f.name.upper()}"]
            if department:
                names.insert(0, f"ONEWINDOW_{department.upper()}_HTTP_{f.name.upper()}")
            for name in names:
                raw = env.get(name, "").strip()
                if not raw:
                    continue
                kind = int if f.name == "attempts" else float
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{name}={raw!r} is not {'a whole number' if kind is int else 'a number'}"
                                     ) from None
                break
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{err} (from the ONEWINDOW_*HTTP_* environment variables)") from None


class _Retryable(Exception):
    """One try failed in a way another try may cure (never leaves this module)."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def segment(value: str) -> str:
    """A value quoted for use as one path segment (a '/' in a contract number stays inside it)."""
    return quote(str(value), safe="")


class HttpClient:
    """JSON over HTTP to one department, with the retry and error rules of the module docstring.

    `department` names it in messages ("tax authority"); `url_setting` is the variable its base URL
    came from, named when the answers suggest the URL is wrong. `transport` is for tests.
    """

    def __init__(self, department: str, base_url: str, settings: HttpSettings | None = None, *,
                 url_setting: str | None = None, transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.department = department
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.url_setting = url_setting
        s = self.settings
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "onewindow", **(headers or {})},
            transport=transport,
            verify=_tls_context(),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def call(self, method: str, path: str, *, body: BaseModel | Mapping[str, Any] | None = None,
             params: Mapping[str, Any] | None = None, idempotency_key: str | None = None,
             mutating: bool | None = None, expect: Any = None) -> Any:
        """Send one request (retrying as the module docstring says) and return the validated answer.

        `expect` is a pydantic model class or any type a `TypeAdapter` accepts; None ignores the
        body. `mutating` defaults to "not a GET"; a mutating call without a key is refused, since
        retrying it could do the work twice.
        """
        method = method.upper()
        mutating = method != "GET" if mutating is None else mutating
        if mutating and not idempotency_key:
            raise ValueError(f"{method} {path} changes data at the {self.department}: pass an idempotency key")
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        content = None
        if body is not None:
            payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
            content = json.dumps(payload, ensure_ascii=False, default=_json_default).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        adapter = None if expect is None else _adapter(expect)
        s = self.settings
        started = time.monotonic()
        tries = 0

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            if isinstance(err, _Retryable) and err.retry_after is not None:
                return min(err.retry_after, s.backoff_max)
            pause = s.backoff * 2 ** (state.attempt_number - 1) + random.uniform(0, s.backoff / 2)
            return min(pause, s.backoff_max)

        def before_sleep(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            pause = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s: %s %s try %d of %d failed (%s); trying again in %.2f s", self.department, method,
                        path, state.attempt_number, s.attempts, getattr(err, "what", err), pause)

        def attempt() -> Any:
            nonlocal tries
            tries += 1
            left = s.deadline - (time.monotonic() - started)
            timeout = httpx.Timeout(max(min(s.read_timeout, left), _MIN_ATTEMPT_SECONDS),
                                    connect=max(min(s.connect_timeout, left), _MIN_ATTEMPT_SECONDS))
            return self._once(method, path, content, query, headers, timeout, adapter)

        retrying = Retrying(
            stop=stop_after_attempt(s.attempts) | stop_before_delay(s.deadline - _MIN_ATTEMPT_SECONDS),
            wait=wait, retry=retry_if_exception_type(_Retryable), before_sleep=before_sleep, reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as err:
            elapsed = time.monotonic() - started
            raise TransientError(
                f"{self.department} at {self.base_url}: {method} {path} failed "
                f"{'once' if tries == 1 else f'{tries} times'} in {elapsed:.1f} s (last: {err.what}). "
                "The service seems down, overloaded or unreachable; the call is safe to try again later."
            ) from err

    def _once(self, method: str, path: str, content: bytes | None, query: Mapping[str, Any],
              headers: Mapping[str, str], timeout: httpx.Timeout,
              adapter: tuple[TypeAdapter[Any], str] | None) -> Any:
        try:
            response = self._client.request(method, path, content=content, params=query or None,
                                            headers=headers, timeout=timeout)
        except httpx.TimeoutException as err:
            raise _Retryable(_describe_timeout(err, timeout)) from err
        except httpx.RemoteProtocolError as err:
            raise _Retryable(f"the connection closed without a complete answer ({err})") from err
        except httpx.ConnectError as err:
            raise _Retryable(f"could not connect ({_reason(err)})") from err
        except httpx.TransportError as err:
            raise _Retryable(f"the connection failed ({type(err).__name__}: {_reason(err)})") from err

        status = response.status_code
        if 200 <= status < 300:
            if adapter is None:
                return None
            try:
                data = response.json()
            except ValueError as err:
                raise _Retryable(f"HTTP {status} but the answer is not JSON ({err}): {_snippet(response)}") from err
            try:
                return adapter[0].validate_python(data)
            except ValidationError as err:
                raise _Retryable(f"HTTP {status} but the answer does not fit {adapter[1]}: "
                                 f"{readable_errors(err)}") from err

        body = _json_or_none(response)
        said = ""
        if isinstance(body, dict) and body.get("message"):
            said = f" ({body['code']}: {body['message']})" if body.get("code") else f" ({body['message']})"
        if status >= 500 or status in (408, 429):
            raise _Retryable(f"HTTP {status} {response.reason_phrase}{said}",
                             retry_after=_retry_after(response.headers.get("Retry-After")))
        if 400 <= status < 500 and isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"]:
            detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
            detail = {str(k): v for k, v in detail.items() if k not in ("code", "message")}
            raise BusinessError(body["code"], str(body.get("message") or body["code"]), **detail)
        check = f"check {self.url_setting} ({self.base_url})" if self.url_setting else f"check {self.base_url}"
        raise TransientError(
            f"{self.department} at {self.base_url}: {method} {path} answered HTTP {status} "
            f"{response.reason_phrase} without a department error code ({_snippet(response)}); "
            f"this looks like a wrong address or a gateway refusing the call: {check}."
        )


# ---------------------------------------------------------------------------- helpers

@functools.cache
def _adapter(expect: Any) -> tuple[TypeAdapter[Any], str]:
    return TypeAdapter(expect), getattr(expect, "__name__", str(expect))


def _json_default(value: Any) -> Any:
    """For plain-dict bodies: decimals as strings and dates in ISO 8601, as pydantic's JSON mode writes them."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context (httpx's defaults: certifi's roots, SSL_CERT_FILE/DIR) for all clients;
    building one costs ~25 ms, and every department's client would otherwise build its own."""
    return httpx.create_ssl_context()


def readable_errors(err: ValidationError, limit: int = 5) -> str:
    """pydantic's errors as 'price: Input should be greater than 0; buyer.name: Field required'."""
    parts = []
    for e in err.errors()[:limit]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        what = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {what}" if where else what)
    more = len(err.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _describe_timeout(err: httpx.TimeoutException, timeout: httpx.Timeout) -> str:
    if isinstance(err, httpx.ConnectTimeout):
        return f"no connection within the connect timeout of {timeout.connect:g} s"
    if isinstance(err, httpx.PoolTimeout):
        return f"no free connection within {timeout.pool:g} s"
    if isinstance(err, httpx.WriteTimeout):
        return f"the request could not be sent within {timeout.write:g} s"
    return f"no answer within the read timeout of {timeout.read:g} s"


def _reason(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _snippet(response: httpx.Response, limit: int = 120) -> str:
    text = " ".join(response.text.split())
    if not text:
        return "empty body"
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off

