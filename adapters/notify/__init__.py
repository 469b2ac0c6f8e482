"""Messages to applicants (SMS, mail), always sent through the outbox by the worker."""
from __future__ import annotations

from typing import Literal, Protocol

from pydantic import Field

from adapters.common import Model


class Notification(Model):
    channel: Literal["sms", "mail"]
    to: str = Field(min_length=3, max_length=200)  # phone number or address
    text: str = Field(min_length=1, max_length=2000)
    case_number: str | None = None


class Notifier(Protocol):
    def send(self, notification: Notification, idempotency_key: str) -> None:
        """Deliver once per key; a repeated key is accepted and not sent twice."""
