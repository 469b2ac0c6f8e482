"""Senders for outbox topics: how a message written by a step reaches the outside world.

A sender takes (payload, idempotency_key) and raises on failure; the worker retries with back-off
and opens an incident when it gives up. The keys make a repeated send harmless on the other side.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters import Departments
from adapters.notify import Notification

Sender = Callable[[dict[str, Any], str], None]


def senders(departments: Departments) -> dict[str, Sender]:
    """The worker's senders for every topic the handlers write."""

    def notify_applicant(payload: dict[str, Any], key: str) -> None:
        departments.notify.send(Notification.model_validate(payload), key)

    def share_housing(payload: dict[str, Any], key: str) -> None:
        departments.housing.receive_result(payload["case_number"], payload["result"], key)

    def share_tax(payload: dict[str, Any], key: str) -> None:
        departments.tax.receive_result(payload["case_number"], payload["result"], key)

    return {"notify.applicant": notify_applicant, "share.housing": share_housing, "share.tax": share_tax}
