"""The courts over HTTP: `HttpCourt` implements `CourtSystem` against these endpoints (both read-only).

| method | path                                     | answer                              |
|--------|------------------------------------------|-------------------------------------|
| GET    | /court/seizures?unit={unit_number}       | 200 `{"seizures": [Seizure, ...]}`  |
| GET    | /court/orders?after={order_id}&limit={n} | 200 `{"orders": [CourtOrder, ...]}` |

`after` is optional (from the first order); `limit` is 1–1000, default 100 (the client clamps
it to that range, as the sandbox does).

Lists come wrapped in an object so fields can be added later without breaking clients. Errors:
see `adapters.http_base` (a department's "no" is HTTP 409 `{"code", "message", "detail"}`; bad
input such as a malformed unit number or limit is 422 with code `INVALID_REQUEST`).
"""
from __future__ import annotations

from typing import Any

from adapters.common import Model
from adapters.court import CourtOrder, Seizure
from adapters.http_base import HttpClient, HttpSettings

MAX_ORDERS = 1000


class SeizureList(Model):
    seizures: list[Seizure]


class OrderList(Model):
    orders: list[CourtOrder]


class HttpCourt:
    """`CourtSystem` over HTTP (see the module docstring for the API)."""

    def __init__(self, base_url: str, settings: HttpSettings | None = None, **client: Any) -> None:
        client.setdefault("url_setting", "ONEWINDOW_COURT_URL")
        self.http = HttpClient("court system", base_url, settings, **client)

    def check_seizures(self, unit_number: str) -> list[Seizure]:
        answer: SeizureList = self.http.call("GET", "/court/seizures", params={"unit": unit_number},
                                             expect=SeizureList)
        return answer.seizures

    def fetch_orders(self, after_id: str | None = None, limit: int = 100) -> list[CourtOrder]:
        limit = max(1, min(int(limit), MAX_ORDERS))  # as the sandbox does: clamped, not refused
        answer: OrderList = self.http.call("GET", "/court/orders", params={"after": after_id, "limit": limit},
                                           expect=OrderList)
        return answer.orders

    def close(self) -> None:
        self.http.close()
