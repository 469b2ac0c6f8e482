"""Messages to applicants, in-process: every SMS and letter is recorded, none is really sent.

The worker delivers the outbox through `send`; a redelivery after a lost acknowledgement carries
the same idempotency key and is not recorded (or, for a real gateway, sent) a second time.
Addresses are checked the way a gateway would refuse them, as BusinessError NOTIFY_BAD_ADDRESS:
- sms: a mainland mobile number, 11 digits starting with 1 (second digit 3–9); spaces, dashes and a
  leading +86 / 0086 are tolerated and removed;
- mail: an e-mail address, or a postal address for 邮寄送达 (Chinese text naming a place and
  a road, street, building or number, e.g. 杭州市西湖区文三路398号3幢1单元501室).
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Column, Integer, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from adapters.common import Model
from adapters.notify import Notification
from adapters.sandbox_store import SANDBOX_METADATA, ensure_tables
from domain.clock import Clock
from domain.errors import BusinessError
from storage.db import Database
from storage.models import UtcDateTime

__all__ = ["SandboxNotifier", "SentNotification", "normalise_phone", "valid_mail_address"]

messages = Table(
    "sandbox_notify_messages", SANDBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("channel", String(10), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("case_number", String(40), index=True),
    Column("sent_at", UtcDateTime(), nullable=False),
)

TABLES = (messages,)

_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_PLACE_RE = re.compile(r"[省市区县镇乡村]")
_STREET_RE = re.compile(r"[路街道巷弄号幢栋室院]|小区|大厦")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


class SentNotification(Model):
    """A notification as the sandbox recorded it."""

    channel: str
    to: str
    text: str
    case_number: str | None
    idempotency_key: str
    sent_at: datetime


def normalise_phone(value: str) -> str | None:
    """The 11-digit mobile number in `value`, or None when it is not one."""
    digits = re.sub(r"[\s-]", "", value or "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    return digits if re.fullmatch(r"1[3-9]\d{9}", digits) else None


def valid_mail_address(value: str) -> bool:
    value = (value or "").strip()
    if "@" in value:
        return bool(_EMAIL_RE.match(value))
    return (len(value) >= 8 and len(_CJK_RE.findall(value)) >= 4
            and bool(_PLACE_RE.search(value)) and bool(_STREET_RE.search(value)))


class SandboxNotifier:
    """Records notifications in `sandbox_notify_messages`. Implements `Notifier`."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()
        ensure_tables(db)

    def send(self, notification: Notification, idempotency_key: str) -> None:
        if notification.channel == "sms":
            to = normalise_phone(notification.to)
            if to is None:
                raise BusinessError(
                    "NOTIFY_BAD_ADDRESS",
                    f"短信号码“{notification.to}”不是有效的手机号码（应为以1开头的11位数字），请核对申请人联系电话",
                    channel="sms", to=notification.to,
                )
        else:
            to = notification.to.strip()
            if not valid_mail_address(to):
                raise BusinessError(
                    "NOTIFY_BAD_ADDRESS",
                    f"邮寄地址“{notification.to}”无效：应为电子邮箱，或写明市、区及路（街）门牌号的邮寄地址",
                    channel="mail", to=notification.to,
                )
        try:
            with self.db.write() as s:
                if s.execute(select(messages.c.id).where(messages.c.idempotency_key == idempotency_key)).first():
                    return
                s.execute(messages.insert().values(
                    idempotency_key=idempotency_key, channel=notification.channel, recipient=to,
                    text=notification.text, case_number=notification.case_number, sent_at=self.clock.now(),
                ))
        except IntegrityError:
            return  # the same key was recorded by a concurrent delivery: sent once

    def sent(self, case_number: str | None = None) -> list[SentNotification]:
        """What was sent, oldest first; only one case's when `case_number` is given."""
        stmt = select(messages).order_by(messages.c.id)
        if case_number is not None:
            stmt = stmt.where(messages.c.case_number == case_number)
        with self.db.read() as s:
            return [SentNotification(channel=r.channel, to=r.recipient, text=r.text, case_number=r.case_number,
                                     idempotency_key=r.idempotency_key, sent_at=r.sent_at) for r in s.execute(stmt)]
