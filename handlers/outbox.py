"""Senders for outbox topics: how a message written by a step reaches the outside world.

A sender takes (payload, idempotency_key) and raises on failure; the worker retries with back-off
and opens an incident when it gives up. Department adapters register their topics here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Sender = Callable[[dict[str, Any], str], None]

SENDERS: dict[str, Sender] = {}


def sender(topic: str) -> Callable[[Sender], Sender]:
    def wrap(fn: Sender) -> Sender:
        if topic in SENDERS:
            raise ValueError(f"outbox topic '{topic}' has two senders")
        SENDERS[topic] = fn
        return fn

    return wrap
