"""The operator registry: service-task code registered by name with declared parameters.

A BPMN service task names an operator (`tax.assess`) and passes parameters; deployment checks
both against this registry, so a typo in a diagram is caught before any case runs.
Handlers say "no" with `BusinessError` (routed by the diagram) and "cannot right now" with
`TransientError` (retried, then an incident); anything else is a defect and becomes an incident.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from domain.errors import BusinessError, TransientError

# Parameter type names a diagram may write in `spiffworkflow:parameter type="…"`.
__all__ = ["REGISTRY", "BusinessError", "HandlerContext", "Operator", "OperatorRegistry", "Param", "TransientError"]

TYPE_NAMES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list, tuple),
    "any": (object,),
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "any"
    required: bool = True
    description: str = ""

    def accepts(self, value: Any) -> bool:
        if value is None:
            return not self.required
        if self.type == "any":
            return True
        allowed = TYPE_NAMES[self.type]
        if self.type in ("int", "float") and isinstance(value, bool):
            return False
        return isinstance(value, allowed)


class HandlerContext(Protocol):
    """What the engine gives a handler besides its parameters."""

    case_id: int
    case_number: str
    task_guid: str
    bpmn_id: str
    operator: str
    idempotency_key: str
    attempt: int

    @property
    def session(self) -> Any:
        """The step's database session: register writes land in the same transaction as the step."""

    @property
    def services(self) -> Any:
        """The departments' adapters (adapters.Departments) the engine was configured with."""

    def now(self) -> datetime: ...

    def outbox(self, topic: str, payload: Mapping[str, Any], key: str | None = None) -> None: ...


@dataclass(frozen=True)
class Operator:
    name: str
    func: Callable[..., Any]
    params: tuple[Param, ...]
    description: str = ""
    wants_context: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def check_call(self, args: Mapping[str, Any]) -> list[str]:
        """Problems with the arguments a service task is about to pass (empty when fine)."""
        problems = []
        for p in self.params:
            if p.name not in args:
                if p.required:
                    problems.append(f"parameter '{p.name}' is missing")
            elif not p.accepts(args[p.name]):
                problems.append(
                    f"parameter '{p.name}' should be {p.type}, got {type(args[p.name]).__name__} "
                    f"{args[p.name]!r:.60}"
                )
        for name in args:
            if self.param(name) is None:
                problems.append(f"parameter '{name}' is not declared by operator '{self.name}'")
        return problems

    def __call__(self, ctx: HandlerContext, args: Mapping[str, Any]) -> Any:
        if self.wants_context:
            return self.func(ctx, **args)
        return self.func(**args)


@dataclass
class OperatorRegistry:
    operators: dict[str, Operator] = field(default_factory=dict)

    def register(
        self,
        name: str,
        params: Iterable[Param | str] = (),
        description: str = "",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: `@registry.register("tax.assess", [Param("case_no", "str")])`.

        A handler whose first parameter is named `ctx` receives the HandlerContext.
        """

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            declared = tuple(Param(p) if isinstance(p, str) else p for p in params)
            first = next(iter(inspect.signature(func).parameters), None)
            self.add(Operator(name, func, declared, description or (func.__doc__ or "").strip(),
                              wants_context=first == "ctx"))
            return func

        return wrap

    def add(self, op: Operator) -> None:
        if op.name in self.operators:
            raise ValueError(f"operator '{op.name}' is registered twice")
        for p in op.params:
            if p.type not in TYPE_NAMES:
                raise ValueError(f"operator '{op.name}' parameter '{p.name}': unknown type '{p.type}'")
        self.operators[op.name] = op

    def get(self, name: str) -> Operator | None:
        return self.operators.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.operators

    def names(self) -> list[str]:
        return sorted(self.operators)

    def merged(self, other: OperatorRegistry) -> OperatorRegistry:
        combined = OperatorRegistry(dict(self.operators))
        for op in other.operators.values():
            combined.add(op)
        return combined


# The application's registry; handler modules register into it when imported.
REGISTRY = OperatorRegistry()


def default_registry() -> OperatorRegistry:
    """The registry with every handler module of the application loaded."""
    import handlers.acceptance  # noqa: F401
    import handlers.calendar  # noqa: F401  (each module registers its operators on import)
    import handlers.court  # noqa: F401
    import handlers.deadline  # noqa: F401
    import handlers.delivery  # noqa: F401
    import handlers.housing  # noqa: F401
    import handlers.notify  # noqa: F401
    import handlers.register  # noqa: F401
    import handlers.share  # noqa: F401
    import handlers.tax  # noqa: F401

    return REGISTRY
