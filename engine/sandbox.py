"""BPMN expressions and scripts run as untrusted code.

SpiffWorkflow's stock environment is a plain `eval`/`exec` with full builtins: anyone who can
upload a diagram could read files or start processes. Here every expression and script is
compiled by RestrictedPython with a stricter policy:

* no imports, no names or attributes starting with `_` (so no `__class__.__mro__` escapes),
  no `open`/`eval`/`exec`/`globals`…, only whitelisted builtins and helpers;
* every `while` body, function body, lambda, `except` handler and `finally` block calls
  `_tick_()`, and every iteration goes through a ticking iterator, so a script that runs past
  the step's time limit (a loop, a recursion, an exception-swallowing retry) stops with
  `StepTimeLimitExceeded` instead of hanging the worker;
* `**`, `<<`, `*`, `+`, `%`, `pow()`, f-string widths and the size-multiplying methods of str,
  bytes and list (`ljust`, `replace`, `join`, `extend` …) are guarded, and `math` offers only
  functions that finish quickly, so no single operation can allocate gigabytes or run for
  minutes inside C code where the deadline cannot reach it;
* builtins that C code runs per item (`map`, `filter`, the `key` of `sorted`/`min`/`max`/
  `list.sort`, `sum`) tick per call, so `list(map(sum, [range(10**6)] * 10**6))` stops at the
  time limit too; `pow(a, b, m)` with a huge exponent and modulus is refused;
* `str()`, `repr()`, `print()`, f-string fields and `%` formatting of a container first count
  what they would walk, repeated references included: `str([big_list] * 10**6)` is refused
  instead of building gigabytes of text inside one C call;
* memory: the ticks also read the process's resident size (at most every 2 ms, from
  /proc/self/statm) and stop the scripts of a step that has grown it by more than
  `MAX_SCRIPT_MEMORY_MB` (256 MB; `ONEWINDOW_SCRIPT_MEMORY_MB`, 0 turns it off) with
  `ScriptMemoryExceeded` ("脚本内存超过上限 256 MB …", a script_error incident on the task) — many
  small allocations adding up within the time limit (a loop appending lists, nested
  comprehensions). What the script built is dropped at once (its scope is cleared, task data it
  grew in place is replaced by a note) and given back to the operating system (malloc_trim) when
  the step ends.

What a script leaves in task data must be storable (JSON-like); anything else is refused with
the variable's name rather than failing later when the case is saved.

Limits of the memory check: the figure is the whole process's, so in a multi-threaded web
process concurrent steps share the allowance (it guards against runaway scripts; it is not an
accountant). The backstop is the OS: `onewindow worker --memory-limit MB` sets RLIMIT_AS, so an
allocation no tick sees ends in MemoryError (an incident) instead of the OOM killer. Not bounded
in-process: CPU spent inside one C call on an aliased structure the script built cheaply
(hashing a tuple holding a million references to one big tuple, comparing two such lists) —
a hard per-step CPU bound would need the step in a child process.

The same compiler is the deploy-time lint: what it rejects is reported with its line.
"""
from __future__ import annotations

import ast
import ctypes
import ctypes.util
import gc
import math
import operator
import os
import re
import threading
import time
import types
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
_MISSING = object()
MAX_RANGE = 1_000_000
MAX_STORED_VALUES = 1_000_000  # values a script may leave in case data, counted through nested lists
MAX_SEQUENCE = 1_000_000
MAX_POW_BITS = 100_000
# pow(a, b, m) costs about b.bit_length() × m.bit_length()² steps (measured ~4e-12 s each): ~1 s here
MAX_MODPOW_COST = 2 * 10 ** 11
MAX_RENDERED_VALUES = 1_000_000  # values str()/repr()/f-strings may walk in a container, aliases counted


def _env_mb(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: give a whole number of megabytes (0 turns the limit off)") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: give a whole number of megabytes (0 turns the limit off)")
    return value


# How much one engine step's scripts may grow the process's resident memory (MB; 0: no limit).
MAX_SCRIPT_MEMORY_MB = _env_mb("ONEWINDOW_SCRIPT_MEMORY_MB", 256)
MEMORY_CHECK_SECONDS = 0.002  # the ticks read the resident size at most this often
MAX_INT_BITS = 1_000_000  # a product of two ints may not exceed this (about 300 000 digits)
# The math functions a script may use: all finish in microseconds whatever their arguments
# (factorial, comb, perm, prod and lcm are left out: with large ints they run for minutes in C).
MATH_FUNCTIONS = (
    "ceil", "floor", "trunc", "fabs", "sqrt", "isqrt", "exp", "log", "log10", "log2", "pow", "fsum",
    "isclose", "isfinite", "isinf", "isnan", "copysign", "fmod", "modf", "hypot", "gcd",
    "pi", "e", "tau", "inf", "nan",
)


class ScriptRejected(Exception):
    """A script or expression the sandbox will not compile; `errors` name the lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class StepTimeLimitExceeded(Exception):
    """An engine step ran past its time limit (an endless loop in a script, most likely)."""


class SandboxViolation(Exception):
    """A script tried something the sandbox forbids at run time (huge allocation, …)."""


class ScriptMemoryExceeded(SandboxViolation):
    """The scripts of an engine step grew the process's memory past the limit."""


# ---------------------------------------------------------------------------- step deadline

_local = threading.local()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident memory now (Linux: /proc/self/statm, a few microseconds); elsewhere the
    peak from getrusage, which only grows but still trips the limit."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            return int(os.read(fd, 128).split()[1]) * _PAGE
        finally:
            os.close(fd)
    except (OSError, IndexError, ValueError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _libc_trim() -> Callable[[], Any] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


_trim = _libc_trim()


def release_memory() -> None:
    """Give freed memory back to the operating system (glibc keeps freed heap otherwise)."""
    gc.collect()
    if _trim is not None:
        _trim()


@contextmanager
def step_deadline(seconds: float, memory_mb: float | None = None) -> Iterator[None]:
    """Scripts run inside this block stop once `seconds` have passed, or once they have grown the
    process's resident memory by more than `memory_mb` (default MAX_SCRIPT_MEMORY_MB; 0: no limit)."""
    saved = {name: getattr(_local, name, None)
             for name in ("check_at", "deadline", "limit", "mem_limit", "mem_base", "mem_tripped")}
    mb = MAX_SCRIPT_MEMORY_MB if memory_mb is None else memory_mb
    now = time.monotonic()
    _local.deadline = now + seconds
    _local.limit = seconds
    _local.mem_limit = int(mb * 2 ** 20) if mb and mb > 0 else None
    _local.mem_base = resident_bytes() if _local.mem_limit else 0
    _local.mem_tripped = False
    _local.check_at = min(_local.deadline, now + MEMORY_CHECK_SECONDS) if _local.mem_limit else _local.deadline
    try:
        yield
    finally:
        tripped = _local.mem_tripped
        for name, value in saved.items():
            setattr(_local, name, value)
        if tripped:
            release_memory()  # what the stopped script built is garbage now: give it back


def check_deadline() -> None:
    """The tick: one clock read and a comparison, except every MEMORY_CHECK_SECONDS (and at the end)."""
    check_at = getattr(_local, "check_at", None)
    if check_at is not None and time.monotonic() >= check_at:
        _check_limits()


def _check_limits() -> None:
    now = time.monotonic()
    if now > _local.deadline:
        raise StepTimeLimitExceeded(
            f"engine step ran longer than its limit of {getattr(_local, 'limit', 0):g} s "
            "(an endless loop in a script?)"
        )
    if _local.mem_limit is None:
        _local.check_at = _local.deadline
        return
    _local.check_at = min(_local.deadline, now + MEMORY_CHECK_SECONDS)
    _check_memory()


def _check_memory() -> None:
    limit, base = _local.mem_limit, _local.mem_base
    grown = resident_bytes() - base
    if grown <= limit:
        return
    # Over: maybe only garbage a script already dropped (an earlier one stopped in this step) that
    # the allocator has not handed back. Trim, look again, and stop only what really holds it.
    release_memory()
    grown = resident_bytes() - base
    if grown <= limit:
        return
    _local.mem_tripped = True
    raise ScriptMemoryExceeded(
        f"脚本内存超过上限 {limit / 2 ** 20:g} MB: the scripts of this engine step grew the process by "
        f"{grown / 2 ** 20:.0f} MB (keep less data in memory, or raise ONEWINDOW_SCRIPT_MEMORY_MB)"
    )


_tick_ = check_deadline


class _TickingIterator:
    """Checks the deadline on every item: nested short loops around slow bodies add up too."""

    __slots__ = ("_it",)

    def __init__(self, it: Iterator[Any]) -> None:
        self._it = it

    def __iter__(self) -> _TickingIterator:
        return self

    def __next__(self) -> Any:
        check_deadline()
        return next(self._it)


def _getiter_(obj: Any) -> Iterator[Any]:
    return _TickingIterator(iter(obj))


def _ticking(fn: Any) -> Any:
    """A function that checks the deadline (and memory) before each call: for callables that C code
    calls per item (`map(sum, …)`, `sorted(…, key=list)`), where no loop of the script ticks."""
    if fn is None or not callable(fn):
        return fn

    def call(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return fn(*args, **kwargs)

    return call


def _keyed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """sorted/min/max whose `key` ticks."""

    def call(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if kwargs.get("key") is not None:
            kwargs["key"] = _ticking(kwargs["key"])
        return fn(*args, **kwargs)

    call.__name__ = fn.__name__
    return call


def _map(function: Any, *iterables: Any) -> Iterator[Any]:
    return map(_ticking(function), *iterables)


def _filter(function: Any, iterable: Any) -> Iterator[Any]:
    return filter(_ticking(function), iterable)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _exceeds(value: Any, budget: int) -> bool:
    """True if walking `value` means visiting more than `budget` values and characters, counted
    through aliases (`[big] * 10**6` is a short list holding a million copies of big)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, (str, bytes)):
            budget -= len(current)
        elif isinstance(current, _CONTAINERS):
            budget -= len(current) + 1
            if budget >= 0:
                if isinstance(current, dict):
                    pending.extend(current.keys())
                    pending.extend(current.values())
                else:
                    pending.extend(current)
        else:
            budget -= 1
        if budget < 0:
            return True
    return False


def _check_rendered(value: Any, what: str = "str()") -> None:
    """Refuse to turn a container into text when that means walking more than MAX_RENDERED_VALUES
    values or characters, aliases counted: one C call would build it, out of reach of every tick."""
    if isinstance(value, _CONTAINERS) and _exceeds(value, MAX_RENDERED_VALUES):
        raise SandboxViolation(f"{what} of a {type(value).__name__} holding more than {MAX_RENDERED_VALUES} "
                               "values or characters (repeated references counted) is too large for a script")


OVERSIZED = "（已清除：脚本超出内存上限时此值过大 — removed: too large when its script ran out of memory）"


def _drop_oversized(context: dict[str, Any]) -> None:
    """After a script ran out of memory, task data it grew in place (`items.append(...)` on a list
    from the case) would be saved with the case — gigabytes of JSON. Such values are replaced by
    a note; the task's incident says what happened."""
    for key, value in list(context.items()):
        if isinstance(value, _CONTAINERS) and _exceeds(value, 4 * MAX_STORED_VALUES):
            context[key] = OVERSIZED


class _BuiltinWrapper(type):
    """The metaclass of `str` as scripts see it: `isinstance(x, str)` still answers for real strings."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.wrapped)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.wrapped)


class _GuardedStr(str, metaclass=_BuiltinWrapper):
    """`str(x)` refuses containers too large to render; what it returns is a plain str."""

    wrapped = str

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if args:
            _check_rendered(args[0])
        return str(*args, **kwargs)


_GuardedStr.__name__ = _GuardedStr.__qualname__ = "str"


def _repr(value: Any) -> str:
    _check_rendered(value, "repr()")
    return repr(value)


class _GuardedPrint(PrintCollector):
    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            _check_rendered(obj, "print()")
        super()._call_print(*objects, **kwargs)


# ---------------------------------------------------------------------------- guarded operators

def _short(value: Any) -> str:
    """A value for a message: huge ints are described, not printed (that alone could take seconds)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<an int of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SEQUENCES = (str, bytes, list, tuple)


def _check_size(n: int) -> None:
    if n > MAX_SEQUENCE:
        raise SandboxViolation(f"a sequence of {_short(n)} items is too large for a script (limit {MAX_SEQUENCE})")


def _pow_(a: Any, b: Any, *mod: Any) -> Any:
    if (not mod and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1
            and b * max(a.bit_length(), 1) > MAX_POW_BITS):
        raise SandboxViolation(f"{_short(a)} ** {_short(b)} is too large for a script")
    if (mod and isinstance(b, int) and isinstance(mod[0], int) and b > 0
            and b.bit_length() * max(mod[0].bit_length(), 64) ** 2 > MAX_MODPOW_COST):
        # modular exponentiation runs in C: a 4000-bit exponent and modulus take 0.4 s, 100 000 bits hours
        raise SandboxViolation(f"pow({_short(a)}, {_short(b)}, {_short(mod[0])}) is too much work for a script")
    return pow(a, b, *mod)


def _lshift_(a: Any, b: Any) -> Any:
    if isinstance(b, int) and b > MAX_POW_BITS:
        raise SandboxViolation(f"{_short(a)} << {_short(b)} is too large for a script")
    return a << b


def _mul_(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, _SEQUENCES) and isinstance(n, int):
            _check_size(len(seq) * n)
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise SandboxViolation(f"{_short(a)} * {_short(b)} is too large for a script")
    return a * b


def _add_(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_size(len(a) + len(b))
    return a + b


def _iadd_(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_size(len(a) + len(b))
    return operator.iadd(a, b)


_FORMAT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _mod_(a: Any, b: Any) -> Any:
    """`%` formatting with a huge width or precision (`'%*d' % (10**10, 1)`) is refused."""
    if isinstance(a, (str, bytes)):
        fmt = a if isinstance(a, str) else a.decode("latin-1")
        starred = False
        for width, precision in _FORMAT_FIELD.findall(fmt):
            for n in (width, precision):
                if n == "*":
                    starred = True
                elif n:
                    _check_size(int(n) if len(n) < 10 else MAX_SEQUENCE + 1)
        if starred:
            for arg in (b if isinstance(b, tuple) else (b,)):
                if isinstance(arg, int):
                    _check_size(arg)
        for arg in (b if isinstance(b, tuple) else b.values() if isinstance(b, dict) else (b,)):
            _check_rendered(arg, "% formatting")
    return a % b


_SPEC_NUMBER = re.compile(r"\d+")


def _format_(value: Any, conversion: int, spec: str) -> str:
    """An f-string field (`f"{x:>{width}}"`): huge widths and huge containers are refused."""
    _check_rendered(value, "an f-string field")
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("s"):
        value = str(value)
    elif conversion == ord("a"):
        value = ascii(value)
    for number in _SPEC_NUMBER.findall(spec):
        _check_size(int(number) if len(number) < 10 else MAX_SEQUENCE + 1)
    return format(value, spec)


def _padded(s: Any, args: tuple[Any, ...]) -> int:
    return args[0] if args and isinstance(args[0], int) else 0


def _replaced(s: Any, args: tuple[Any, ...]) -> int:
    if len(args) < 2 or not isinstance(args[0], (str, bytes)) or not isinstance(args[1], (str, bytes)):
        return 0
    return len(s) + s.count(args[0]) * max(0, len(args[1]) - len(args[0]))


def _tabs(s: Any, args: tuple[Any, ...]) -> int:
    size = args[0] if args and isinstance(args[0], int) else 8
    return len(s) * max(size, 1)


def _translated(s: Any, args: tuple[Any, ...]) -> int:
    table = args[0] if args else None
    if isinstance(table, dict):
        longest = max((len(v) for v in table.values() if isinstance(v, (str, bytes))), default=1)
        return len(s) * max(longest, 1)
    return 0


# Methods of str/bytes whose result can be far larger than their inputs: name -> the result's size.
_SIZED_METHODS: dict[str, Callable[[Any, tuple[Any, ...]], int]] = {
    "ljust": _padded, "rjust": _padded, "center": _padded, "zfill": _padded,
    "expandtabs": _tabs, "replace": _replaced, "translate": _translated,
}


def _guarded_method(receiver: Any, name: str) -> Callable[..., Any]:
    method = getattr(receiver, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        if name == "sort":
            check_deadline()
            if kwargs.get("key") is not None:
                kwargs["key"] = _ticking(kwargs["key"])
            return method(*args, **kwargs)
        if name in ("join", "extend"):
            items = list(args[0]) if args else []
            if name == "join":
                total = sum(len(x) for x in items if isinstance(x, (str, bytes)))
                _check_size(total + len(receiver) * max(len(items) - 1, 0))
            else:
                _check_size(len(receiver) + len(items))
            return method(items, *args[1:], **kwargs)
        _check_size(_SIZED_METHODS[name](receiver, args))
        return method(*args, **kwargs)

    return call


def _is_guarded(cls: type, name: str) -> bool:
    if issubclass(cls, (str, bytes)):
        return name in _SIZED_METHODS or name == "join"
    return issubclass(cls, list) and name in ("extend", "sort")


def _unbound_method(cls: type, name: str) -> Callable[..., Any]:
    """`str.ljust(s, n)`: the same guard, with the receiver as the first argument."""

    def call(receiver: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(receiver, cls):
            return getattr(cls, name)(receiver, *args, **kwargs)
        return _guarded_method(receiver, name)(*args, **kwargs)

    return call


def _getattr_(obj: Any, name: str, *default: Any) -> Any:
    """RestrictedPython's safer_getattr, plus size guards on the methods that multiply data.

    A missing attribute raises AttributeError as in Python (safer_getattr would return None,
    hiding a typo until some later step fails far from it).
    """
    value = safer_getattr(obj, name, *(default or (_MISSING,)))
    if value is _MISSING:
        if isinstance(obj, types.ModuleType) and obj.__name__ == "math":
            raise AttributeError(f"math.{name} is not available in BPMN scripts "
                                 f"(available: {', '.join(MATH_FUNCTIONS)})")
        raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{name}'")
    if isinstance(obj, type) and _is_guarded(obj, name):
        return _unbound_method(obj, name)
    if _is_guarded(type(obj), name):
        return _guarded_method(obj, name)
    return value


def _sum(iterable: Any, start: Any = 0) -> Any:
    """sum(), except that adding up lists (`sum(lists, [])`) may not build a huge list in C; ticks, as
    C code may call it per item (`map(sum, …)`)."""
    check_deadline()
    if isinstance(start, _SEQUENCES):
        items = list(iterable)
        _check_size(len(start) + sum(len(x) for x in items if isinstance(x, _SEQUENCES)))
        return sum(items, start)
    return sum(iterable, start)


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SandboxViolation(f"range of {len(r)} items is too large for a script (limit {MAX_RANGE})")
    return r


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": _iadd_, "-=": operator.isub, "*=": _mul_, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": _mod_, "**=": _pow_, "<<=": _lshift_,
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

    def visit_Try(self, node: ast.Try) -> Any:
        # `finally: return`/`continue` would swallow StepTimeLimitExceeded; the tick raises it again
        node = super().visit_Try(node)
        if node.finalbody:
            node.finalbody.insert(0, _tick_call(node.finalbody[0]))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        # recursion has no loop to tick in: `def f(n): return f(n-1) + f(n-1)` would never stop
        node = super().visit_FunctionDef(node)
        node.body.insert(0, _tick_call(node.body[0]))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        node = super().visit_Lambda(node)
        tick = ast.copy_location(ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[]), node.body)
        body = ast.copy_location(ast.BoolOp(op=ast.Or(), values=[tick, node.body]), node.body)
        node.body = ast.fix_missing_locations(body)  # `_tick_() or body`: _tick_ returns None
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = super().visit_FormattedValue(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        call = ast.Call(func=ast.Name("_format_", ast.Load()),
                        args=[node.value, ast.Constant(node.conversion), spec], keywords=[])
        node.value = ast.fix_missing_locations(ast.copy_location(call, node.value))
        node.conversion = -1
        node.format_spec = None
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = {ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Mult: "_mul_", ast.Add: "_add_",
                 ast.Mod: "_mod_"}.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        # the new Name needs a location too, or compile() fails with "required field lineno missing"
        return ast.fix_missing_locations(ast.copy_location(call, node))


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
    except (RecursionError, MemoryError):
        return ["nested too deeply to compile; split it into simpler statements"]
    except (ValueError, TypeError, SyntaxError) as err:  # e.g. NUL characters in the source
        return [f"cannot be compiled: {err}"]
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
    b["sum"] = _sum
    b["pow"] = _pow_
    b["map"] = _map
    b["filter"] = _filter
    for name in ("sorted", "min", "max"):
        b[name] = _keyed(b[name])
    b["str"] = _GuardedStr
    b["repr"] = _repr
    b["math"] = _safe_math()
    for name in FORBIDDEN_NAMES:
        b.pop(name, None)
    return b


def _safe_math() -> types.ModuleType:
    module = types.ModuleType("math", "The quick functions of Python's math module.")
    for name in MATH_FUNCTIONS:
        setattr(module, name, getattr(math, name))
    return module


def base_globals(helpers: dict[str, Any]) -> dict[str, Any]:
    g: dict[str, Any] = {
        "__builtins__": _builtins(),
        "_getattr_": _getattr_,
        "_getitem_": default_guarded_getitem,
        "_getiter_": _getiter_,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar_,
        "_apply_": _apply_,
        "_print_": _GuardedPrint,
        "_tick_": _tick_,
        "_pow_": _pow_,
        "_lshift_": _lshift_,
        "_mul_": _mul_,
        "_add_": _add_,
        "_mod_": _mod_,
        "_format_": _format_,
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
        try:
            return eval(code, scope)  # restricted code object, guarded globals
        finally:
            scope.clear()  # nothing it built outlives it (an error's traceback would keep it)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        self.check_for_overwrite(context, external_context or {})
        code = compile_script(script)
        scope = dict(self._base)
        if external_context:
            scope.update(external_context)
        scope.update(context)
        try:
            exec(code, scope)  # noqa: S102 — restricted code object, guarded globals
        except BaseException as err:
            if isinstance(err, MemoryError | ScriptMemoryExceeded):
                _drop_oversized(context)
            # what the script built goes now, not when the error's traceback (which SpiffWorkflow
            # keeps for a while, and which holds the script's frames) is gone
            scope.clear()
            raise
        external = external_context or {}
        for key in [k for k in context if k not in scope]:
            del context[key]
        for key, value in scope.items():
            if key.startswith("_") or key in external:
                continue
            if key in self._reserved and value is self._base[key]:
                continue  # a helper, untouched (a script may still use a helper's name for data)
            if isinstance(value, types.ModuleType) or (callable(value) and not isinstance(value, (dict, list))):
                continue  # functions a script defined, `m = math`: not data
            bad = _unstorable(value) if context.get(key, _MISSING) is not value else None
            if bad:
                hint = ("keep only what later steps need" if bad.startswith("more than") else
                        "use numbers, strings, True/False/None, lists and dicts (for a range: list(...))")
                if isinstance(value, (dict, list, tuple, set, frozenset)):
                    bad = f"a {type(value).__name__} containing {bad}"
                raise SandboxViolation(f"the script sets '{key}' to {bad}, which cannot be kept in case data; {hint}")
            context[key] = value
        return True


_SCALARS = (str, int, float, bool, type(None))


def _unstorable(value: Any) -> str | None:
    """What in a value cannot be saved with the case (JSON, plus the sets SpiffWorkflow converts).

    Counts what it would walk: `[[0] * 10**6] * 1000` is a short list, but saving it means
    writing 10**9 values.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    count = 1
    while pending:
        current, depth = pending.pop()
        if isinstance(current, _SCALARS):
            continue
        if depth > 50:
            return "nesting more than 50 levels deep"
        if isinstance(current, (dict, list, tuple, set, frozenset)):
            count += len(current)
            if count > MAX_STORED_VALUES:
                return f"more than {MAX_STORED_VALUES} values"
            if isinstance(current, dict):
                bad_key = next((k for k in current if not isinstance(k, _SCALARS)), _MISSING)
                if bad_key is not _MISSING:
                    return f"a {type(bad_key).__name__} key"
                pending.extend((v, depth + 1) for v in current.values())
            else:
                pending.extend((v, depth + 1) for v in current)
            continue
        return "a function" if callable(current) else f"a {type(current).__name__}"
    return None
