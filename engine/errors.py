"""What the engine refuses, and why. The web layer maps these to HTTP statuses."""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Base of every refusal; the message is meant for people."""

    http_status = 400


class NotFound(EngineError):
    http_status = 404


class NotPermitted(EngineError):
    http_status = 403


class Conflict(EngineError):
    """The case changed since the caller looked at it (optimistic lock)."""

    http_status = 409


class TaskNotReady(Conflict):
    pass


class CaseNotActive(Conflict):
    pass


class InvalidInput(EngineError):
    http_status = 422


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a deployment: `file:line element-id: message`."""

    file: str
    line: int | None
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line if self.line is not None else '?'}"
        return f"{where} {self.element_id or '-'}: {self.message}"


class DeploymentRejected(EngineError):
    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.element_id or "", p.message))
        super().__init__(
            f"deployment rejected, {len(self.problems)} problem(s):\n" + "\n".join(map(str, self.problems))
        )
