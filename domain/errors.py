"""The two ways another party can fail us, shared by adapters, handlers and the engine.

A department answering "no" (seized unit, purchase restriction) is a `BusinessError` with a code
the diagram can route on; a department that cannot answer now (timeout, connection refused,
5xx) is a `TransientError`, retried and then shown as an incident.
"""
from __future__ import annotations

from typing import Any


class TransientError(Exception):
    """The other side is unreachable or failed (timeout, connection, 5xx): try again later."""


class BusinessError(Exception):
    """The other side answered "no": a BPMN error with a code, or a result to route on."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
