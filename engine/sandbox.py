"""BPMN expressions and scripts run as untrusted code.

SpiffWorkflow's stock environment is a plain `eval`/`exec` with full builtins: anyone who can
upload a diagram could read files or start processes. Here every expression and script is
compiled by RestrictedPython with a stricter policy:

* no imports, no names or attributes starting with `_` (so no `__class__.__mro__` escapes),
  no `open`/`eval`/`exec`/`globals`…, only whitelisted builtins and helpers;
* every `while` body and `except` handler calls `_tick_()`, and every iteration goes through a
  ticking iterator, so a script that runs past the step's time limit stops with
  `StepTimeLimitExceeded` instead of hanging the worker;
* `**`, `<<` and sequence `*` are guarded so one expression cannot allocate gigabytes.

The same compiler is the deploy-time lint: what it rejects is reported with its line.
"""
from __future__ import annotations

import ast
import math
import operator
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector
from SpiffWorkflow.bpmn.script_engine import TaskDataEnvironment

from domain import calendar

FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "globals", "locals", "vars", "breakpoint", "input",
    "memoryview", "help", "exit", "quit", "dir", "delattr", "setattr",
})
MAX_RANGE = 1_000_000
MAX_SEQUENCE = 1_000_000
MAX_POW_BITS = 100_000


class ScriptRejected(Exception):
    """A script or expression the sandbox will not compile; `errors` name the lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class StepTimeLimitExceeded(Exception):
    """An engine step ran past its time limit (an endless loop in a script, most likely)."""


class SandboxViolation(Exception):
    """A script tried something the sandbox forbids at run time (huge allocation, …)."""


# ---------------------------------------------------------------------------- step deadline

_local = threading.local()


@contextmanager
def step_deadline(seconds: float) -> Iterator[None]:
    """Scripts run inside this block stop once `seconds` have passed."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    _local.limit = seconds
    try:
        yield
    finally:
        _local.deadline = previous


def check_deadline() -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise StepTimeLimitExceeded(
            f"engine step ran longer than its limit of {getattr(_local, 'limit', 0):g} s "
            "(an endless loop in a script?)"
        )


_tick_ = check_deadline


class _TickingIterator:
    __slots__ = ("_it", "_n")

    def __init__(self, it: Iterator[Any]) -> None:
        self._it = it
        self._n = 0

    def __iter__(self) -> _TickingIterator:
        return self

    def __next__(self) -> Any:
        self._n += 1
        if not self._n & 0x3FF:
            check_deadline()
        return next(self._it)


def _getiter_(obj: Any) -> Iterator[Any]:
    return _TickingIterator(iter(obj))


# ---------------------------------------------------------------------------- guarded operators

def _pow_(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * max(a.bit_length(), 1) > MAX_POW_BITS:
            raise SandboxViolation(f"{a} ** {b} is too large for a script")
    return a ** b


def _lshift_(a: Any, b: Any) -> Any:
    if isinstance(b, int) and b > MAX_POW_BITS:
        raise SandboxViolation(f"{a} << {b} is too large for a script")
    return a << b


def _mul_(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int):
            if len(seq) * n > MAX_SEQUENCE:
                raise SandboxViolation(f"a sequence of {len(seq) * n} items is too large for a script")
    return a * b


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SandboxViolation(f"range of {len(r)} items is too large for a script (limit {MAX_RANGE})")
    return r


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": _mul_, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": _pow_, "<<=": _lshift_,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
}


def _inplacevar_(op: str, x: Any, y: Any) -> Any:
    return _INPLACE[op](x, y)


def _apply_(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# ---------------------------------------------------------------------------- the policy

class OneWindowPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus: no imports, no escape builtins, deadline ticks, guarded ops."""

    def visit_Import(self, node: ast.Import) -> Any:
        self.error(node, "import is not allowed in BPMN scripts; use the helpers provided")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        self.error(node, "import is not allowed in BPMN scripts; use the helpers provided")
        return node

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in FORBIDDEN_NAMES:
            self.error(node, f"'{node.id}' is not available in BPMN scripts")
        return super().visit_Name(node)

    def visit_While(self, node: ast.While) -> Any:
        node = self.node_contents_visit(node)
        test = node.test
        if isinstance(test, ast.Constant) and test.value and not _has_exit(node.body):
            self.error(node, "endless loop: 'while' on a constant true condition with no break or return")
        node.body.insert(0, _tick_call(node))
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        node = super().visit_ExceptHandler(node)
        node.body.insert(0, _tick_call(node))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = {ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Mult: "_mul_"}.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)


def _tick_call(node: ast.AST) -> ast.stmt:
    call = ast.Expr(ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[]))
    ast.copy_location(call, node)
    ast.fix_missing_locations(call)
    return call


def _has_exit(body: list[ast.stmt]) -> bool:
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, (ast.Break, ast.Return, ast.Raise)):
                return True
    return False


@lru_cache(maxsize=8192)
def compile_expression(source: str) -> Any:
    result = compile_restricted_eval(source.strip(), "<expression>", policy=OneWindowPolicy)
    if result.errors:
        raise ScriptRejected(list(result.errors))
    return result.code


@lru_cache(maxsize=4096)
def compile_script(source: str) -> Any:
    result = compile_restricted_exec(source, "<string>", policy=OneWindowPolicy)
    if result.errors:
        raise ScriptRejected(list(result.errors))
    return result.code


def lint(source: str, mode: str = "exec") -> list[str]:
    """Problems with a script (`exec`) or an expression (`eval`), each naming its line."""
    try:
        (compile_script if mode == "exec" else compile_expression)(source)
    except ScriptRejected as err:
        return err.errors
    return []


# ---------------------------------------------------------------------------- helpers

def round_money(value: Any) -> float:
    """Round to the fen, half up, as tax and fee amounts are."""
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _builtins() -> dict[str, Any]:
    b = dict(safe_builtins)
    for name in ("sum", "min", "max", "sorted", "any", "all", "enumerate", "list", "dict", "reversed",
                 "filter", "map", "zip", "set", "frozenset", "iter", "next"):
        b[name] = __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    b["range"] = _range
    b["math"] = math
    for name in FORBIDDEN_NAMES:
        b.pop(name, None)
    return b


def base_globals(helpers: dict[str, Any]) -> dict[str, Any]:
    g: dict[str, Any] = {
        "__builtins__": _builtins(),
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": _getiter_,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar_,
        "_apply_": _apply_,
        "_print_": PrintCollector,
        "_tick_": _tick_,
        "_pow_": _pow_,
        "_lshift_": _lshift_,
        "_mul_": _mul_,
    }
    g.update(helpers)
    return g


def default_helpers(now: Callable[[], Any]) -> dict[str, Any]:
    """Functions every BPMN expression may call. Kept few, so they rarely collide with data names."""
    return {
        "add_workdays": calendar.add_workdays,
        "workdays_between": calendar.workdays_between,
        "is_workday": calendar.is_workday,
        "now": lambda: now().astimezone(_shanghai()).isoformat(),
        "today": lambda: now().astimezone(_shanghai()).date().isoformat(),
        "round_money": round_money,
    }


def _shanghai() -> Any:
    from domain.clock import SHANGHAI

    return SHANGHAI


class SandboxEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's task-data environment, with restricted compilation and whitelisted globals."""

    def __init__(self, helpers: dict[str, Any]) -> None:
        super().__init__(dict(helpers))
        self._base = base_globals(helpers)
        self._reserved = frozenset(self._base)

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        code = compile_expression(expression)
        scope = dict(self._base)
        if external_context:
            scope.update(external_context)
        scope.update(context)
        return eval(code, scope)  # noqa: S307 — restricted code object, guarded globals

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        self.check_for_overwrite(context, external_context or {})
        code = compile_script(script)
        scope = dict(self._base)
        if external_context:
            scope.update(external_context)
        scope.update(context)
        exec(code, scope)  # noqa: S102 — restricted code object, guarded globals
        external = external_context or {}
        for key in [k for k in context if k not in scope]:
            del context[key]
        for key, value in scope.items():
            if key in self._reserved or key in external or key.startswith("_"):
                continue
            if callable(value) and not isinstance(value, (dict, list)):
                continue
            context[key] = value
        return True
