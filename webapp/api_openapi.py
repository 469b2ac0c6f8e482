"""The API's routes with what the OpenAPI document says of them, kept in one place.

`ApiRoutes.route(...)` registers a view on the blueprint *and* records its method, path, roles,
parameters, body and answers; `ApiRoutes.document()` turns the records into an OpenAPI 3.1
document whose schemas are generated from the pydantic models of `webapp.api_schemas`. A route
added any other way would be missing from the document — tests/test_api.py compares the
document with the app's url_map.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint
from flask_login import current_user
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from domain.roles import role_label
from webapp.api_schemas import Error
from webapp.api_support import ApiError

REF = "#/components/schemas/{model}"
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR_TEXT = {
    400: "请求体为空、不是 UTF-8 或不是有效的 JSON",
    401: "未登录：缺少或无效的 API 令牌",
    403: "调用者没有所需岗位",
    404: "对象不存在",
    409: "冲突：案件已被他人更新、任务已办结或已被他人认领、案件不在办理中",
    413: "请求体超过上限",
    415: "请求体的 Content-Type 不对",
    422: "内容不符合要求（逐字段说明）",
}


@dataclass
class Operation:
    method: str
    rule: str
    endpoint: str
    summary: str
    description: str
    tag: str
    roles: tuple[str, ...] | None  # None: any logged-in user
    public: bool
    body: type[BaseModel] | None
    body_required: bool
    multipart: dict[str, Any] | None
    query: type[BaseModel] | None
    answers: dict[int, tuple[type[BaseModel] | str | None, str]]
    errors: tuple[int, ...]

    @property
    def path(self) -> str:
        """The OpenAPI path: `/cases/<int:case_id>` → `/cases/{case_id}`."""
        return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", self.rule)

    def path_params(self) -> list[tuple[str, str]]:
        return [(m.group(2), m.group(1) or "string") for m in _CONVERTER.finditer(self.rule)]


@dataclass
class ApiRoutes:
    bp: Blueprint
    title: str
    version: str
    description: str = ""
    operations: list[Operation] = field(default_factory=list)

    def route(self, method: str, rule: str, *, summary: str, tag: str, description: str = "",
              roles: Iterable[str] | None = None, public: bool = False, body: type[BaseModel] | None = None,
              body_required: bool = True, multipart: dict[str, Any] | None = None,
              query: type[BaseModel] | None = None,
              answers: dict[int, tuple[type[BaseModel] | str | None, str]] | None = None,
              errors: Iterable[int] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a view: `roles` any of which the caller must hold (403 otherwise, naming them);
        `answers` status → (model, or a media type for non-JSON, description); `errors` the
        statuses it may refuse with besides 401/403 (added from `public`/`roles`)."""
        role_tuple = tuple(roles) if roles is not None else None

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                if role_tuple and not current_user.has(*role_tuple):
                    raise ApiError(403, "forbidden", missing_role_message(role_tuple))
                return view(*args, **kwargs)

            self.bp.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[method])
            self.operations.append(Operation(
                method=method.lower(), rule=rule, endpoint=f"{self.bp.name}.{view.__name__}", summary=summary,
                description=description or inspect.cleandoc(view.__doc__ or ""), tag=tag, roles=role_tuple,
                public=public, body=body, body_required=body_required, multipart=multipart, query=query,
                answers=answers or {200: (None, "成功")}, errors=tuple(errors)))
            return guarded

        return decorate

    # ------------------------------------------------------------------------------ the document

    def document(self, server_url: str) -> dict[str, Any]:
        models: dict[tuple[type[BaseModel], str], None] = {(Error, "serialization"): None}
        for op in self.operations:
            if op.body is not None:
                models[(op.body, "validation")] = None
            for model, _text in op.answers.values():
                if isinstance(model, type):
                    models[(model, "serialization")] = None  # type: ignore[index]
        refs, defs = models_json_schema(list(models), ref_template=REF)  # type: ignore[arg-type]
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method] = self._operation(op, refs)
        tags = sorted({op.tag for op in self.operations})
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "servers": [{"url": server_url}],
            "tags": [{"name": t} for t in tags],
            "paths": paths,
            "components": {
                "schemas": defs.get("$defs", {}),
                "securitySchemes": {"bearer": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "owt_…",
                    "description": "每个用户的 API 令牌（`onewindow user token issue LOGIN --name …`），"
                                   "请求以令牌的用户身份办理，与请求中的其他内容无关。"}},
            },
            "security": [{"bearer": []}],
        }

    def _operation(self, op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": op.endpoint.split(".", 1)[1],
            "summary": op.summary,
            "tags": [op.tag],
        }
        description = op.description
        if op.roles:
            description = (description + "\n\n" if description else "") + "岗位：" + "、".join(
                f"{role_label(r)}（{r}）" for r in op.roles)
        if description:
            out["description"] = description
        if op.public:
            out["security"] = []
        params = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "integer"} if conv == "int" else {"type": "string"}}
                  for name, conv in op.path_params()]
        if op.query is not None:
            params += _query_parameters(op.query)
        if params:
            out["parameters"] = params
        if op.body is not None:
            out["requestBody"] = {"required": op.body_required,
                                  "content": {"application/json": {"schema": refs[(op.body, "validation")]}}}
        elif op.multipart is not None:
            out["requestBody"] = {"required": True, "content": {"multipart/form-data": op.multipart}}
        responses: dict[str, Any] = {}
        for status, (model, text) in sorted(op.answers.items()):
            if model is None:
                responses[str(status)] = {"description": text}
            elif isinstance(model, str):  # a media type: an SVG drawing, or a JSON document of its own
                schema = {"type": "object"} if model == "application/json" else {"type": "string"}
                responses[str(status)] = {"description": text, "content": {model: {"schema": schema}}}
            else:
                responses[str(status)] = {"description": text, "content": {
                    "application/json": {"schema": refs[(model, "serialization")]}}}
        error_ref = refs[(Error, "serialization")]
        statuses = set(op.errors)
        if not op.public:
            statuses.add(401)
        if op.roles:
            statuses.add(403)
        if op.body is not None or op.multipart is not None:
            statuses |= {413, 415}
            if op.body is not None:
                statuses.add(400)
        for status in sorted(statuses):
            responses[str(status)] = {"description": _ERROR_TEXT.get(status, "错误"),
                                      "content": {"application/json": {"schema": error_ref}}}
        out["responses"] = responses
        return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def missing_role_message(roles: tuple[str, ...]) -> str:
    held = "、".join(role_label(r) for r in current_user.roles) or "无"
    wanted = "、".join(role_label(r) for r in roles)
    return (f"此操作需要以下岗位之一：{wanted}；{current_user.display_name}（{current_user.login}）的岗位：{held}。"
            "如需权限，请联系系统管理员。")
