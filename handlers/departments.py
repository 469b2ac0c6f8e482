"""Reaching the departments from a handler: the adapters the engine was configured with."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from domain.errors import BusinessError


def departments(ctx: Any) -> Any:
    """The engine's `adapters.Departments`; a clear defect (an incident) when none was configured."""
    services = ctx.services
    if services is None:
        raise RuntimeError("the engine was started without department adapters (adapters.factory.departments)")
    return services


def parse(model: type[BaseModel], data: Any, what: str) -> Any:
    """Case data into a department's request model, or a refusal that names every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in err.errors())
        raise BusinessError("INVALID_CASE_DATA", f"{what}数据不完整或有误：{problems}") from None


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
