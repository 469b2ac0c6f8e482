"""The JSON API's plumbing: reading request bodies, answering, and turning every refusal into
`{"error": code, "message": …}` (`webapp.security.api_error`, the one error shape of /api/).

Request bodies, in this order of checks:
- over the limit → 413 (`API_MAX_BODY_BYTES`, default 1 MiB, env ONEWINDOW_API_MAX_BODY_BYTES;
  deployments `API_MAX_UPLOAD_BYTES`, default 16 MiB, env ONEWINDOW_API_MAX_UPLOAD_BYTES);
- not `application/json` (or `…+json`) where JSON is expected, not `multipart/form-data` for a
  deployment → 415;
- empty where a body is required, not UTF-8, not JSON (also NaN/Infinity, numbers of thousands of
  digits, nesting deeper than the parser goes) → 400, saying where;
- JSON no database can hold (`check_json`: nested deeper than MAX_JSON_DEPTH, a text with a NUL
  character or a lone UTF-16 surrogate, a number too large for a float) → 422 naming the field;
- not what the endpoint's pydantic model asks for (also a whole number beyond 64 bits) → 422 with
  one message per field.
Nothing is stored before all of these pass, and the engine's calls are single transactions.

Texts are Chinese (the engine's refusals are too); an engine text without Chinese gets a
Chinese lead ("未找到：no process 'x' is deployed").
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from pydantic import BaseModel, ValidationError

from engine.errors import (
    CaseNotActive,
    Conflict,
    DeploymentRejected,
    EngineError,
    InvalidInput,
    NotFound,
    NotPermitted,
    TaskNotReady,
)
from webapp.security import api_error

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_UPLOAD = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64  # objects and arrays within each other; case data is a few levels deep
MAX_INT = 2**63 - 1  # what an integer column holds
_CJK = re.compile(r"[\u3400-\u9fff]")


class ApiError(Exception):
    """A refusal with its HTTP status, code and message (and extra fields for the body)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> Response:
        return api_error(self.status, self.message, self.code, **self.extra)


def configure(app: Flask, env: Mapping[str, str] | None = None) -> None:
    """Body limits: the app's config wins, then ONEWINDOW_API_MAX_* variables, then the defaults."""
    env = os.environ if env is None else env
    for key, var, default in (("API_MAX_BODY_BYTES", "ONEWINDOW_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY),
                              ("API_MAX_UPLOAD_BYTES", "ONEWINDOW_API_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD)):
        if app.config.get(key) is None:
            raw = env.get(var)
            try:
                app.config[key] = int(raw) if raw else default
            except ValueError:
                raise ValueError(f"{var}={raw!r} is not a whole number of bytes") from None


def body_limit(upload: bool = False) -> int:
    return int(current_app.config["API_MAX_UPLOAD_BYTES" if upload else "API_MAX_BODY_BYTES"])


def human_size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} 字节"


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"请求体太大：本接口最多接受 {human_size(limit)}。请减少内容后重试。")


def check_size(upload: bool = False) -> None:
    """Refuse a body over the limit before anything reads it; a chunked body is cut at the limit."""
    limit = body_limit(upload)
    # one byte more than allowed may be read from a body of unknown length, so that `json_body`
    # can tell a body of exactly the limit from a longer one cut at it
    request.max_content_length = limit + 1
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


def is_json_type() -> bool:
    mimetype = request.mimetype or ""
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def json_body(model: type[M], required: bool = True) -> M:
    """The request body as `model`, or an ApiError (400/413/415/422) saying what is wrong."""
    check_size()
    raw = request.get_data(cache=True)
    if len(raw) > body_limit():
        raise too_large(body_limit())
    if not raw.strip():
        if required:
            raise ApiError(400, "empty_body", "请求体为空：请以 JSON 对象发送（Content-Type: application/json）。")
        return model.model_validate({})
    if not is_json_type():
        got = request.mimetype or "未注明"
        raise ApiError(415, "unsupported_media_type",
                       f"请求体应为 JSON（Content-Type: application/json），收到的是 {got}。")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(400, "malformed_json", f"请求体不是 UTF-8 编码的文本（第 {err.start + 1} 个字节起）。") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        where = f"第 {err.lineno} 行第 {err.colno} 列"
        raise ApiError(400, "malformed_json", f"请求体不是有效的 JSON：{where}，{_json_reason(err.msg)}。") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", f"请求体的 JSON 嵌套太深：最多 {MAX_JSON_DEPTH} 层。") from None
    except ValueError as err:
        reason = "数字的位数太多" if "digits" in str(err) else str(err)
        raise ApiError(400, "malformed_json", f"请求体不是有效的 JSON：{reason}。") from None
    problems = check_json(value)
    if problems:
        raise ApiError(422, "invalid", "请求内容不符合要求：" + "；".join(f"{f['field'] or '请求体'}：{f['message']}"
                                                               for f in problems) + "。", fields=problems)
    return validate(model, value)


def check_json(value: Any, path: str = "", depth: int = 0) -> list[dict[str, str]]:
    """What in a parsed JSON value no database takes: deeper than MAX_JSON_DEPTH, a text (or a
    field name) with a NUL character or a lone UTF-16 surrogate, a number beyond a float."""
    if depth > MAX_JSON_DEPTH:
        return [{"field": path, "message": f"嵌套太深：最多 {MAX_JSON_DEPTH} 层"}]
    if isinstance(value, str):
        reason = _text_problem(value)
        return [{"field": path, "message": reason}] if reason else []
    if isinstance(value, float) and not math.isfinite(value):
        return [{"field": path, "message": "数值超出范围"}]
    problems: list[dict[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            reason = _text_problem(key)
            if reason:  # named so the answer itself can be encoded
                shown = key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
                problems.append({"field": f"{path}.{shown}" if path else shown, "message": f"字段名{reason}"})
                continue
            where = f"{path}.{key}" if path else key
            problems += check_json(item, where, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += check_json(item, f"{path}.{i}" if path else str(i), depth + 1)
    return problems[:20]


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "不能含有 NUL 字符（\\u0000）"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "含有不成对的 Unicode 代理字符（\\ud800–\\udfff）"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"JSON 不允许 {name}")


_JSON_REASONS = {
    "Expecting value": "此处应为一个值",
    "Expecting property name enclosed in double quotes": "字段名应以双引号括起",
    "Expecting ',' delimiter": "缺少逗号",
    "Expecting ':' delimiter": "缺少冒号",
    "Unterminated string starting at": "字符串没有结束引号",
    "Extra data": "JSON 之后还有多余内容",
    "Invalid control character at": "字符串中有控制字符",
}


def _json_reason(msg: str) -> str:
    return _JSON_REASONS.get(msg, msg)


def validate(model: type[M], value: Any, where: str = "请求内容") -> M:
    try:
        result = model.model_validate(value)
    except ValidationError as err:
        fields = field_errors(err)
    else:
        fields = [{"field": name, "message": f"超出范围：最大 {MAX_INT}"} for name in type(result).model_fields
                  if _too_big(getattr(result, name))]
        if not fields:
            return result
    summary = "；".join(f"{f['field'] or '请求体'}：{f['message']}" for f in fields)
    raise ApiError(422, "invalid", f"{where}不符合要求：{summary}。", fields=fields)


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT


_PYDANTIC_MESSAGES = {
    "missing": "必填",
    "extra_forbidden": "不认识的字段，本接口不接受",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "literal_error": "应为 {expected} 之一",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "string_too_long": "最多 {max_length} 个字符",
}


def field_errors(err: ValidationError) -> list[dict[str, str]]:
    out = []
    for e in err.errors():
        ctx = e.get("ctx") or {}
        kind = e["type"]
        if kind == "string_too_short":
            message = "不能为空" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 个字符"
        elif kind in _PYDANTIC_MESSAGES:
            message = _PYDANTIC_MESSAGES[kind].format(**{k: v for k, v in ctx.items()})
        else:
            message = e["msg"]
        out.append({"field": ".".join(str(p) for p in e["loc"]), "message": message})
    return out


def answer(model: type[BaseModel], value: Any, status: int = 200, headers: Mapping[str, str] | None = None
           ) -> Response:
    """`value` (a dict or model) shaped by `model`, as JSON."""
    body = model.model_validate(value).model_dump(mode="json", exclude_none=False)
    response = current_app.response_class(json.dumps(body, ensure_ascii=False), status=status,
                                          mimetype="application/json")
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


# ------------------------------------------------------------------------------------ engine refusals

_ENGINE_CODES: list[tuple[type[EngineError], str, str]] = [  # most specific first
    (DeploymentRejected, "deployment_rejected", "部署被拒绝"),
    (TaskNotReady, "task_not_ready", "任务不能办理"),
    (CaseNotActive, "case_not_active", "案件不在办理中"),
    (Conflict, "conflict", "操作冲突"),
    (NotFound, "not_found", "未找到"),
    (NotPermitted, "forbidden", "无权操作"),
    (InvalidInput, "invalid", "数据有误"),
    (EngineError, "bad_request", "请求无效"),
]


def engine_error(err: EngineError, **extra: Any) -> ApiError:
    """The engine's refusal as an ApiError with its status (errors.py) and its readable text."""
    code, lead = next((c, lead) for cls, c, lead in _ENGINE_CODES if isinstance(err, cls))
    if isinstance(err, DeploymentRejected):
        problems = [{"file": p.file, "line": p.line, "element_id": p.element_id, "message": p.message}
                    for p in err.problems]
        first = err.problems[0] if err.problems else None
        message = f"部署被拒绝：共 {len(problems)} 个问题，所有文件均未部署。请逐条修改后重新上传"
        message += f"（第一个：{first}）。" if first else "。"
        return ApiError(422, code, message, problems=problems, **extra)
    text = str(err)
    message = text if _CJK.search(text) else f"{lead}：{text}"
    return ApiError(getattr(err, "http_status", 400), code, message, **extra)
