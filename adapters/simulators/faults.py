"""Fault injection for the simulators: slow, failing, hanging and forgetful departments on demand.

Every department request (not `/_faults` or `/_health`) gets one outcome, drawn from a seeded
`random.Random` so a run can be repeated exactly:

- `latency_ms` (+ up to `jitter_ms`, uniform): a pause before anything else, on every request.
- `error`   (probability `error_rate`): answer 503 `{"code": "SIMULATED_UNAVAILABLE", ...}` at once,
  without doing the work.
- `timeout` (probability `timeout_rate`): hang for `timeout_s` (set it longer than the client's read
  timeout), then answer 504 — without doing the work. The client gives up first.
- `drop`    (probability `drop_rate`): *do the work*, then lose the answer: with `drop_mode="close"`
  the connection is shut without a response (the client sees "server disconnected"); with
  `drop_mode="502"` an empty 502 goes back. Either way the client sees a transient failure
  although the department acted — the case idempotency keys exist for.
- `ok`: served normally.

One uniform draw per request picks the outcome (`error` below `error_rate`, then `timeout`, then
`drop`), so the rates must add up to at most 1. `script` is a list of outcomes used, in order,
before any draw (`["timeout", "ok"]`: the next request hangs, the one after is served) — what
tests use for exact sequences.

Configuration: a `FaultConfig`, or the environment (`FaultConfig.from_env`): `ONEWINDOW_SIMULATOR_<NAME>`
for every simulator, `ONEWINDOW_SIMULATOR_<DEPARTMENT>_<NAME>` for one, e.g.
`ONEWINDOW_SIMULATOR_TAX_DROP_RATE=0.2`. At run time: `GET /_faults` shows the settings and the
counts of each outcome; `POST /_faults` with a JSON object of the fields to change (and
`"reset_stats": true` to zero the counts) changes them; a `seed` in it restarts the generator.
The admin endpoints have no authentication: simulators listen on loopback only.
"""
from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.http_base import readable_errors

Outcome = Literal["ok", "error", "timeout", "drop"]
OUTCOMES: tuple[str, ...] = ("ok", "error", "timeout", "drop")


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    jitter_ms: float = Field(default=0.0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    drop_mode: Literal["close", "502"] = "close"
    seed: int | None = None
    script: list[Outcome] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultConfig:
        total = self.error_rate + self.timeout_rate + self.drop_rate
        if total > 1 + 1e-9:
            raise ValueError(f"error_rate + timeout_rate + drop_rate is {total:g}; it can be at most 1")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str], department: str | None = None) -> FaultConfig:
        """`ONEWINDOW_SIMULATOR_<DEPARTMENT>_<NAME>` over `ONEWINDOW_SIMULATOR_<NAME>` over the default."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            if name == "script":
                continue
            keys = [f"ONEWINDOW_SIMULATOR_{name.upper()}"]
            if department:
                keys.insert(0, f"ONEWINDOW_SIMULATOR_{department.upper()}_{name.upper()}")
            for key in keys:
                raw = env.get(key, "").strip()
                if raw:
                    values[name] = raw
                    break
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise ValueError(f"simulator fault settings from ONEWINDOW_SIMULATOR_* variables: "
                             f"{readable_errors(err)}") from None


class FaultInjector:
    """The live fault settings of one simulator, its random generator and its counts (thread-safe)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = (config or FaultConfig()).model_copy(deep=True)
        self._random = random.Random(self.config.seed)
        self.stats = dict.fromkeys(OUTCOMES, 0)
        self.stopping = threading.Event()  # set when the server stops: hanging requests end at once

    def update(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Apply a partial change (validated as a whole); raises pydantic.ValidationError if it is invalid."""
        changes = dict(changes)
        reset = bool(changes.pop("reset_stats", False))
        with self._lock:
            merged = FaultConfig.model_validate({**self.config.model_dump(), **changes})
            self.config = merged
            if "seed" in changes:
                self._random = random.Random(merged.seed)
            if reset:
                self.stats = dict.fromkeys(OUTCOMES, 0)
            return merged.model_copy(deep=True)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": self.config.model_dump(mode="json"), "stats": dict(self.stats)}

    def draw(self) -> tuple[Outcome, float]:
        """The next request's outcome and its latency in seconds."""
        with self._lock:
            c = self.config
            latency = c.latency_ms + (self._random.uniform(0, c.jitter_ms) if c.jitter_ms else 0.0)
            if c.script:
                outcome: Outcome = c.script.pop(0)
            else:
                u = self._random.random()
                if u < c.error_rate:
                    outcome = "error"
                elif u < c.error_rate + c.timeout_rate:
                    outcome = "timeout"
                elif u < c.error_rate + c.timeout_rate + c.drop_rate:
                    outcome = "drop"
                else:
                    outcome = "ok"
            self.stats[outcome] += 1
            return outcome, latency / 1000.0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)
