"""The notification gateway over HTTP: `HttpNotifier` implements `Notifier`.

| method | path             | body         | answer | key |
|--------|------------------|--------------|--------|-----|
| POST   | /notify/messages | Notification | 204    | yes |

A repeated `Idempotency-Key` is accepted (204) and the message is not sent twice. The worker
delivers notifications from the outbox, so a `TransientError` here means "try again later".
"""
from __future__ import annotations

from typing import Any

from adapters.http_base import HttpClient, HttpSettings
from adapters.notify import Notification


class HttpNotifier:
    """`Notifier` over HTTP (see the module docstring for the API)."""

    def __init__(self, base_url: str, settings: HttpSettings | None = None, **client: Any) -> None:
        client.setdefault("url_setting", "ONEWINDOW_NOTIFY_URL")
        self.http = HttpClient("notification service", base_url, settings, **client)

    def send(self, notification: Notification, idempotency_key: str) -> None:
        self.http.call("POST", "/notify/messages", body=notification, idempotency_key=idempotency_key)

    def close(self) -> None:
        self.http.close()
