"""The courts (法院): seizures on a unit, and orders sent to the registry (府院联办)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Protocol

from pydantic import Field

from adapters.common import Model


class Seizure(Model):
    court: str  # 查封机关
    document_no: str  # 查封文号, e.g. (2026)浙0106执123号
    kind: Literal["seizure", "queued_seizure", "pre_seizure"]  # 查封 | 轮候查封 | 预查封
    unit_number: str
    starts_on: date
    ends_on: date  # at most 3 years (民诉法解释 第485条), renewable


class CourtOrder(Model):
    """An order the court sends the registry: register a seizure, or release one."""

    order_id: str
    kind: Literal["seizure", "release", "renewal"]
    court: str
    document_no: str
    unit_number: str = Field(min_length=28, max_length=28)
    starts_on: date | None = None
    ends_on: date | None = None
    released_document_no: str | None = None  # for a release or renewal: the seizure it concerns
    issued_at: datetime


class CourtSystem(Protocol):
    def check_seizures(self, unit_number: str) -> list[Seizure]:
        """Seizures in force on the unit and on its parcel (the first 19 characters + W00000000)."""

    def fetch_orders(self, after_id: str | None = None, limit: int = 100) -> list[CourtOrder]:
        """Orders issued since `after_id` (the worker polls; the registry registers them)."""
